package dispatch

import (
	"encoding/json"
	"testing"
)

// encodeHeaders must produce the same JSON as encoding/json (without its
// HTML escaping) for any header map, including control characters, quotes,
// non-ASCII and invalid UTF-8.
func TestEncodeHeadersMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	tests := []map[string]string{
		{},
		{"Content-Type": "application/json", "X-A": "1"},
		{"Quote": `say "hi" \ back`, "Ctl": "a\x00b\x1fc\nd\re\tf", "Uni": "héllo ✓ \u2028 \u2029"},
		{"Bad": "ok\xffend", "Z": "", "A": "first"},
	}
	for _, h := range tests {
		got := encodeHeaders(h)
		var back map[string]string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Fatalf("encodeHeaders(%q) = %s: not JSON: %v", h, got, err)
		}
		var wantBack map[string]string
		want, _ := json.Marshal(h)
		_ = json.Unmarshal(want, &wantBack)
		if len(back) != len(wantBack) {
			t.Fatalf("encodeHeaders(%q) = %s, want %s", h, got, want)
		}
		for k, v := range wantBack {
			if back[k] != v {
				t.Fatalf("key %q: %q, want %q (%s vs %s)", k, back[k], v, got, want)
			}
		}
	}
	if got := encodeHeaders(map[string]string{"b": "2", "a": "1"}); got != `{"a":"1","b":"2"}` {
		t.Fatalf("keys not sorted: %s", got)
	}
}

func FuzzEncodeHeaders(f *testing.F) {
	f.Add("Content-Type", "application/json")
	f.Add("X", "a\"b\\c\x00\xff\u2028")
	f.Fuzz(func(t *testing.T, k, v string) {
		got := encodeHeaders(map[string]string{k: v})
		var back map[string]string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Fatalf("%q: %v (%s)", v, err, got)
		}
		want, _ := json.Marshal(map[string]string{k: v})
		var wantBack map[string]string
		_ = json.Unmarshal(want, &wantBack)
		for kk, vv := range wantBack {
			if back[kk] != vv {
				t.Fatalf("%q=%q: got %q want %q", kk, v, back[kk], vv)
			}
		}
	})
}
