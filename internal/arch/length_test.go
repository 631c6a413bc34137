package arch_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// maxFuncLines is the longest a function in internal/ may be, from its
// func keyword to its closing brace.
const maxFuncLines = 120

// lengthExempt are the paths (under internal/, a directory or a file)
// whose functions are not held to maxFuncLines (none since issue 13's
// composition root landed; keep it that way).
var lengthExempt = []string{}

// longFuncs lists the functions of one parsed file longer than max lines.
func longFuncs(fset *token.FileSet, f *ast.File, max int) []string {
	var out []string
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		start, end := fset.Position(fd.Pos()), fset.Position(fd.End())
		if n := end.Line - start.Line + 1; n > max {
			name := fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) == 1 {
				name = recvName(fd.Recv.List[0].Type) + "." + name
			}
			out = append(out, fmt.Sprintf("%s:%d: %s is %d lines", start.Filename, start.Line, name, n))
		}
	}
	return out
}

func recvName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return recvName(t.X)
	case *ast.IndexExpr:
		return recvName(t.X)
	case *ast.IndexListExpr:
		return recvName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return "?"
}

func exempt(rel string) bool { return exemptIn(lengthExempt, rel) }

// exemptIn reports whether rel is one of list or below one of them.
func exemptIn(list []string, rel string) bool {
	for _, e := range list {
		if rel == e || strings.HasPrefix(rel, e+"/") {
			return true
		}
	}
	return false
}

// TestFunctionLength: no function in internal/ (tests aside) is longer
// than maxFuncLines, outside lengthExempt.
func TestFunctionLength(t *testing.T) {
	root := ".." // internal/
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (exempt(rel) || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || exempt(rel) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		for _, l := range longFuncs(fset, f, maxFuncLines) {
			t.Errorf("%s (at most %d: split it)", l, maxFuncLines)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("only %d files read under %s: is the test running from internal/arch?", files, root)
	}
}

// TestFunctionLengthCheck: the check finds a function one line too long,
// a method too, and passes one at the limit.
func TestFunctionLengthCheck(t *testing.T) {
	body := func(name string, lines int) string {
		// "func …{" and "}" are two of the lines
		return name + " {\n" + strings.Repeat("\t_ = 0\n", lines-2) + "}\n"
	}
	src := "package p\n\ntype T struct{}\n\n" +
		body("func atLimit()", maxFuncLines) +
		body("func tooLong()", maxFuncLines+1) +
		body("func (t *T) method()", maxFuncLines+1)
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := longFuncs(fset, f, maxFuncLines)
	want := []string{
		fmt.Sprintf("p.go:%d: tooLong is %d lines", 5+maxFuncLines, maxFuncLines+1),
		fmt.Sprintf("p.go:%d: T.method is %d lines", 6+2*maxFuncLines, maxFuncLines+1),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, tc := range []struct {
		rel  string
		want bool
	}{{"cli", true}, {"cli/serve.go", true}, {"client", false}, {"web/records.go", true}, {"web/views.go", false}, {"agent/agent.go", false}} {
		if exemptIn([]string{"cli", "web/records.go"}, tc.rel) != tc.want {
			t.Errorf("exemptIn(%q) = %v, want %v", tc.rel, !tc.want, tc.want)
		}
	}
}
