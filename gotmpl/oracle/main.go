// Command gotmpl-oracle renders the edgecd-gotmpl test corpus with Go's
// text/template, the sprig v3 functions Argo CD allows and Argo CD's own
// template helpers, and writes what real Go produced for every case.
//
// Usage (from gotmpl/oracle):
//
//	go run . [-cases FILE] [-out FILE] [--update]
//
// Without --update the expectations are printed on stdout; with it they
// replace the -out file (testdata/gotemplate/expected.json by default).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/yaml"
)

// testCase is one entry of cases.yaml.
type testCase struct {
	Name          string   `json:"name"`
	Template      string   `json:"template"`
	Data          any      `json:"data"`
	Options       []string `json:"options,omitempty"`
	ErrorContains string   `json:"error_contains,omitempty"`
}

// result is one entry of expected.json: the case and what Go made of it.
type result struct {
	Name          string   `json:"name"`
	Template      string   `json:"template"`
	Data          any      `json:"data"`
	Options       []string `json:"options"`
	Output        *string  `json:"output,omitempty"`
	Phase         string   `json:"phase,omitempty"`
	Error         string   `json:"error,omitempty"`
	ErrorContains string   `json:"error_contains,omitempty"`
}

// funcMap is the function set of an Argo CD ApplicationSet template.
func funcMap() template.FuncMap {
	m := sprig.GenericFuncMap()
	// Argo CD removes what would tell a template about its environment.
	delete(m, "env")
	delete(m, "expandenv")
	delete(m, "getHostByName")
	m["normalize"] = normalize
	m["toYaml"] = toYAML
	m["fromYaml"] = fromYAML
	m["fromYamlArray"] = fromYAMLArray
	return m
}

var notDNSChar = regexp.MustCompile("[^-a-z0-9.]")

// normalize lowercases a name, replaces what a DNS name may not hold with
// '-', cuts it to 253 bytes and strips leading and trailing '-' and '.'.
func normalize(name string) string {
	name = notDNSChar.ReplaceAllString(strings.ToLower(name), "-")
	if len(name) > 253 {
		name = name[:253]
	}
	return strings.Trim(name, "-.")
}

// toYAML marshals with sigs.k8s.io/yaml, without the final newline.
func toYAML(v any) (string, error) {
	out, err := yaml.Marshal(v)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(out), "\n"), nil
}

// fromYAML decodes a YAML mapping; a decoding error is the call's error.
func fromYAML(text string) (map[string]any, error) {
	out := map[string]any{}
	if err := yaml.Unmarshal([]byte(text), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// fromYAMLArray decodes a YAML sequence; a decoding error is the call's error.
func fromYAMLArray(text string) ([]any, error) {
	out := []any{}
	if err := yaml.Unmarshal([]byte(text), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// run renders one case the way Argo CD renders a goTemplate string field.
func run(c testCase) result {
	r := result{Name: c.Name, Template: c.Template, Data: c.Data, Options: c.Options, ErrorContains: c.ErrorContains}
	if r.Options == nil {
		r.Options = []string{}
	}
	t, err := template.New("").Funcs(funcMap()).Parse(c.Template)
	if err != nil {
		r.Phase, r.Error = "parse", err.Error()
		return r
	}
	for _, o := range c.Options {
		t = t.Option(o)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, c.Data); err != nil {
		r.Phase, r.Error = "execute", err.Error()
		return r
	}
	s := buf.String()
	r.Output = &s
	return r
}

func main() {
	cases := flag.String("cases", "../../testdata/gotemplate/cases.yaml", "corpus to render")
	out := flag.String("out", "../../testdata/gotemplate/expected.json", "expectations written by --update")
	update := flag.Bool("update", false, "rewrite the -out file instead of printing")
	flag.Parse()

	text, err := os.ReadFile(*cases)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var corpus []testCase
	if err := yaml.UnmarshalStrict(text, &corpus); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", *cases, err)
		os.Exit(1)
	}
	seen := map[string]bool{}
	results := make([]result, 0, len(corpus))
	failed := false
	for _, c := range corpus {
		if c.Name == "" || seen[c.Name] {
			fmt.Fprintf(os.Stderr, "case %q: names must be present and unique\n", c.Name)
			failed = true
		}
		seen[c.Name] = true
		r := run(c)
		if c.ErrorContains != "" && !strings.Contains(r.Error, c.ErrorContains) {
			fmt.Fprintf(os.Stderr, "case %q: Go's error %q does not contain %q\n", c.Name, r.Error, c.ErrorContains)
			failed = true
		}
		results = append(results, r)
	}
	if failed {
		os.Exit(1)
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *update {
		if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "wrote %d cases to %s\n", len(results), *out)
		return
	}
	os.Stdout.Write(buf.Bytes())
}
