// Package main is ociregistry, an OCI distribution registry for edgecd's tests: go-containerregistry's
// in-memory registry (pkg/registry) on a loopback port, optionally behind HTTP basic auth or the standard
// Bearer token flow (a 401 naming a token endpoint that hands out tokens for basic credentials), with tag
// lists served a page at a time (Link headers) and, for tests of digest checks, blobs served corrupted.
//
// It prints "listening on 127.0.0.1:PORT" on stdout once it accepts requests, logs one line per request on
// stderr, and exits when its stdin is closed (the test process holding the pipe died or dropped it).
package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (loopback)")
	basic := flag.String("basic", "", "user:password required as HTTP basic auth on /v2/")
	token := flag.String("token", "", "user:password the token endpoint /token requires; /v2/ then requires its Bearer tokens")
	tagsPage := flag.Int("tags-page", 0, "tags per page of a tag list, with a Link header to the next page (0: all at once)")
	corrupt := flag.Bool("corrupt-blobs", false, "flip the last byte of every blob served")
	flag.Parse()
	if *basic != "" && *token != "" {
		log.Fatal("-basic and -token exclude each other")
	}

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listening on %s: %v", *addr, err)
	}
	s := &server{
		registry: registry.New(registry.Logger(log.New(io.Discard, "", 0))),
		basic:    *basic,
		token:    *token,
		tagsPage: *tagsPage,
		corrupt:  *corrupt,
		tokens:   map[string]bool{},
		realm:    "http://" + listener.Addr().String() + "/token",
	}
	go func() {
		// The test process holds stdin: when it is closed, nobody needs the registry any more.
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	fmt.Printf("listening on %s\n", listener.Addr())
	log.Fatal(http.Serve(listener, s))
}

type server struct {
	registry http.Handler
	basic    string
	token    string
	tagsPage int
	corrupt  bool
	realm    string

	mu     sync.Mutex
	tokens map[string]bool
}

// recorder keeps the status a handler wrote, for the log.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	auth := s.serve(rec, r)
	log.Printf("%s %s auth=%s status=%d", r.Method, r.URL.RequestURI(), auth, rec.status)
}

// serve answers one request and says which authentication it carried.
func (s *server) serve(w http.ResponseWriter, r *http.Request) string {
	auth := s.authKind(r)
	if r.URL.Path == "/token" {
		s.serveToken(w, r)
		return auth
	}
	if !strings.HasPrefix(r.URL.Path, "/v2") {
		http.NotFound(w, r)
		return auth
	}
	switch {
	case s.basic != "" && auth != "basic":
		w.Header().Set("WWW-Authenticate", `Basic realm="ociregistry"`)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return auth
	case s.token != "" && auth != "bearer":
		challenge := fmt.Sprintf("Bearer realm=%q,service=%q", s.realm, "ociregistry")
		if scope := scopeOf(r); scope != "" {
			challenge += fmt.Sprintf(",scope=%q", scope)
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return auth
	}
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/tags/list") && s.tagsPage > 0 {
		s.serveTagsPage(w, r)
		return auth
	}
	if r.Method == http.MethodGet && s.corrupt && strings.Contains(r.URL.Path, "/blobs/sha256:") {
		inner := httptest.NewRecorder()
		s.registry.ServeHTTP(inner, r)
		body := inner.Body.Bytes()
		if inner.Code == http.StatusOK && len(body) > 0 {
			body[len(body)-1] ^= 0xff
		}
		copyHeader(w.Header(), inner.Header())
		w.WriteHeader(inner.Code)
		_, _ = w.Write(body)
		return auth
	}
	s.registry.ServeHTTP(w, r)
	return auth
}

// authKind is "basic" or "bearer" for valid credentials of the configured kind, "none" without an
// Authorization header, "invalid" otherwise.
func (s *server) authKind(r *http.Request) string {
	header := r.Header.Get("Authorization")
	if header == "" {
		return "none"
	}
	if user, password, ok := r.BasicAuth(); ok {
		want := s.basic
		if want == "" {
			want = s.token
		}
		if want != "" && equal(user+":"+password, want) {
			return "basic"
		}
		return "invalid"
	}
	if bearer, ok := strings.CutPrefix(header, "Bearer "); ok {
		s.mu.Lock()
		valid := s.tokens[bearer]
		s.mu.Unlock()
		if valid {
			return "bearer"
		}
	}
	return "invalid"
}

// serveToken hands out a token for the basic credentials of -token (any scope asked).
func (s *server) serveToken(w http.ResponseWriter, r *http.Request) {
	if s.token == "" {
		http.NotFound(w, r)
		return
	}
	user, password, ok := r.BasicAuth()
	if !ok || !equal(user+":"+password, s.token) {
		w.Header().Set("WWW-Authenticate", `Basic realm="ociregistry-token"`)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "the token endpoint needs valid credentials")
		return
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	token := hex.EncodeToString(raw)
	s.mu.Lock()
	s.tokens[token] = true
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": token, "access_token": token, "expires_in": 300})
}

// serveTagsPage serves a tag list a page at a time: at most -tags-page tags after `last`, and a Link header
// to the next page while tags remain.
func (s *server) serveTagsPage(w http.ResponseWriter, r *http.Request) {
	all := r.Clone(r.Context())
	all.URL.RawQuery = ""
	inner := httptest.NewRecorder()
	s.registry.ServeHTTP(inner, all)
	if inner.Code != http.StatusOK {
		copyHeader(w.Header(), inner.Header())
		w.WriteHeader(inner.Code)
		_, _ = w.Write(inner.Body.Bytes())
		return
	}
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(inner.Body.Bytes(), &list); err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	sort.Strings(list.Tags)
	n := s.tagsPage
	if asked, err := strconv.Atoi(r.URL.Query().Get("n")); err == nil && asked > 0 && asked < n {
		n = asked
	}
	last := r.URL.Query().Get("last")
	start := sort.SearchStrings(list.Tags, last)
	if last != "" && start < len(list.Tags) && list.Tags[start] == last {
		start++
	}
	page := list.Tags[start:]
	if len(page) > n {
		page = page[:n]
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {page[len(page)-1]}}
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, next.Encode()))
	}
	list.Tags = page
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// scopeOf is the token scope a /v2/<name>/… request needs.
func scopeOf(r *http.Request) string {
	rest := strings.TrimPrefix(r.URL.Path, "/v2/")
	for _, marker := range []string{"/tags/", "/manifests/", "/blobs/"} {
		if i := strings.Index(rest, marker); i > 0 {
			action := "pull"
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				action = "pull,push"
			}
			return "repository:" + rest[:i] + ":" + action
		}
	}
	return ""
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": code, "message": message}},
	})
}

func copyHeader(to, from http.Header) {
	for key, values := range from {
		to[key] = values
	}
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
