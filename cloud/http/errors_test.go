package http

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/larder-lockers/larder/cloud"
)

// domainCodes reads every constant of type Code declared in package cloud's source, so
// that a code added there is seen here without anyone listing it twice.
func domainCodes(t *testing.T) map[string]cloud.Code {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]cloud.Code{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name.Name != "cloud" {
			continue
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
					continue
				}
				for i, n := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: code %s is not a string literal", fset.Position(n.Pos()), n.Name)
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					codes[n.Name] = cloud.Code(v)
				}
			}
		}
	}
	// The parse must have found the codes this package names, or the test proves nothing.
	for name, c := range map[string]cloud.Code{"EInvalid": cloud.EInvalid, "EIdempotency": cloud.EIdempotency,
		"EInternal": cloud.EInternal, "EAlreadyIssued": cloud.EAlreadyIssued} {
		if codes[name] != c {
			t.Fatalf("package cloud's source gave %s = %q, want %q: is the parse still right?", name, codes[name], c)
		}
	}
	return codes
}

// TestEveryCodeHasAStatus: a code added to package cloud without a row in the table
// would answer 500 and be logged as an internal error.
func TestEveryCodeHasAStatus(t *testing.T) {
	codes := domainCodes(t)
	known := map[cloud.Code]bool{}
	for name, c := range codes {
		known[c] = true
		s, ok := statuses[c]
		if !ok {
			t.Errorf("cloud.%s (%q) has no HTTP status in statuses", name, c)
			continue
		}
		if s < 400 || s > 599 || http.StatusText(s) == "" {
			t.Errorf("cloud.%s maps to %d, not an error status", name, s)
		}
		if got := StatusOf(c); got != s {
			t.Errorf("StatusOf(%s) = %d, want the table's %d", name, got, s)
		}
	}
	for c := range statuses {
		if !known[c] {
			t.Errorf("statuses maps %q, which package cloud does not declare", c)
		}
	}
	for c, want := range map[cloud.Code]int{cloud.EIdempotency: 422, cloud.EInternal: 500, cloud.ENotFound: 404, cloud.EInvalid: 400} {
		if got := StatusOf(c); got != want {
			t.Errorf("StatusOf(%s) = %d, want %d", c, got, want)
		}
	}
}
