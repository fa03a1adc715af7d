package pluginlog

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/otpcgate/otpcgate/host/runtime"
)

func line(merchant, text string) runtime.LogLine {
	return runtime.LogLine{Time: time.Now(), Plugin: merchant, Version: "v1", RequestID: "r", Level: slog.LevelWarn, Text: text}
}

func TestBuffer(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		lines     []string // for merchant a
		wantTexts []string
	}{
		{"kept in order", Config{}, []string{"1", "2", "3"}, []string{"1", "2", "3"}},
		{"oldest dropped by count", Config{Lines: 2}, []string{"1", "2", "3"}, []string{"2", "3"}},
		{"oldest dropped by bytes", Config{Bytes: 3 * (100 + 64)}, []string{strings.Repeat("a", 100), strings.Repeat("b", 100),
			strings.Repeat("c", 100), strings.Repeat("d", 100)}, []string{strings.Repeat("b", 100), strings.Repeat("c", 100), strings.Repeat("d", 100)}},
		{"a huge line is clipped and kept alone", Config{Bytes: 1000}, []string{"x", strings.Repeat("h", 10_000)}, []string{strings.Repeat("h", maxText)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := New(tc.cfg)
			for i, l := range tc.lines {
				b.Add(line("a", l))
				b.Add(line("b", "other merchant "+l))
				if i == 0 {
					b.Add(line("b", "extra"))
				}
			}
			got, next := b.Since("a", 0, 100)
			var texts []string
			for _, e := range got {
				if e.Version != "v1" || e.RequestID != "r" || e.Level != "WARN" || strings.HasPrefix(e.Text, "other") {
					t.Fatalf("entry %+v", e)
				}
				texts = append(texts, e.Text)
			}
			if strings.Join(texts, ",") != strings.Join(tc.wantTexts, ",") {
				t.Fatalf("kept %q, want %q", texts, tc.wantTexts)
			}
			if next != uint64(len(tc.lines)) {
				t.Fatalf("next %d, want %d", next, len(tc.lines))
			}
			if more, n := b.Since("a", next, 100); len(more) != 0 || n != next {
				t.Fatalf("after the last: %v %d", more, n)
			}
			if nb, _ := b.Since("b", 0, 100); len(nb) == 0 || nb[0].Seq != 1 && tc.cfg.Lines == 0 && tc.cfg.Bytes == 0 {
				t.Fatalf("merchant b: %+v", nb)
			}
		})
	}
}

func TestSinceMax(t *testing.T) {
	b := New(Config{})
	for range 5 {
		b.Add(line("a", "x"))
	}
	got, next := b.Since("a", 1, 2)
	if len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 3 || next != 3 {
		t.Fatalf("%+v next %d", got, next)
	}
}

// TestWait: a follower wakes for its merchant's next line, not for
// another merchant's, and gives up with its context.
func TestWait(t *testing.T) {
	b := New(Config{})
	b.Add(line("a", "old"))
	done := make(chan error, 1)
	go func() { done <- b.Wait(context.Background(), "a", 1) }()
	b.Add(line("b", "not yours"))
	select {
	case err := <-done:
		t.Fatalf("woke on another merchant's line: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	b.Add(line("a", "new"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not woken by its own line")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Wait(ctx, "a", 2); err == nil {
		t.Fatal("Wait returned without a new line")
	}
	b.Forget("a")
	if got, _ := b.Since("a", 0, 10); len(got) != 0 {
		t.Fatalf("forgotten merchant still has %d lines", len(got))
	}
}
