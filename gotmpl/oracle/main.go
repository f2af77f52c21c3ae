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
	// Tree, instead of Template: a JSON document whose every string and
	// object key is a template, rendered as Argo CD renders an Application
	// template (the ApplicationSet corpus cases).
	Tree any `json:"tree,omitempty"`
}

// result is one entry of expected.json: the case and what Go made of it.
type result struct {
	Name          string   `json:"name"`
	Template      string   `json:"template"`
	Tree          any      `json:"tree,omitempty"`
	Data          any      `json:"data"`
	Options       []string `json:"options"`
	Output        *string  `json:"output,omitempty"`
	OutputTree    any      `json:"output_tree,omitempty"`
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

// render executes one template over data with the case's options; the
// phase names where it failed.
func render(text string, data any, options []string) (string, string, error) {
	t, err := template.New("").Funcs(funcMap()).Parse(text)
	if err != nil {
		return "", "parse", err
	}
	for _, o := range options {
		t = t.Option(o)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", "execute", err
	}
	return buf.String(), "", nil
}

// renderTree renders every string and object key of a JSON document.
func renderTree(node any, data any, options []string) (any, string, error) {
	switch v := node.(type) {
	case string:
		return render(v, data, options)
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			r, phase, err := renderTree(item, data, options)
			if err != nil {
				return nil, phase, err
			}
			out[i] = r
		}
		return out, "", nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, item := range v {
			key, phase, err := render(k, data, options)
			if err != nil {
				return nil, phase, err
			}
			r, phase, err := renderTree(item, data, options)
			if err != nil {
				return nil, phase, err
			}
			out[key] = r
		}
		return out, "", nil
	default:
		return v, "", nil
	}
}

// run renders one case the way Argo CD renders a goTemplate string field
// (or, for a tree, every string of an Application template).
func run(c testCase) result {
	r := result{Name: c.Name, Template: c.Template, Tree: c.Tree, Data: c.Data, Options: c.Options, ErrorContains: c.ErrorContains}
	if r.Options == nil {
		r.Options = []string{}
	}
	if c.Tree != nil {
		tree, phase, err := renderTree(c.Tree, c.Data, c.Options)
		if err != nil {
			r.Phase, r.Error = phase, err.Error()
			return r
		}
		r.OutputTree = tree
		return r
	}
	s, phase, err := render(c.Template, c.Data, c.Options)
	if err != nil {
		r.Phase, r.Error = phase, err.Error()
		return r
	}
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
