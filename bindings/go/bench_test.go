package mcrs_test

import (
	"fmt"
	"testing"

	mcrs "github.com/mcrs-project/mcrs-go"
)

func BenchmarkGet(b *testing.B) {
	c, _ := setup(b)
	c.Set(ctx, "bench", "value-of-some-length-0123456789")
	b.ReportAllocs()
	for b.Loop() {
		if _, found, err := c.Get(ctx, "bench"); err != nil || !found {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetNoreply(b *testing.B) {
	c, _ := setup(b)
	v := []byte("value-of-some-length-0123456789")
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Set(ctx, "bench", v, mcrs.Noreply(true)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetMany100(b *testing.B) {
	c, _ := setup(b)
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench%d", i)
		c.Set(ctx, keys[i], i)
	}
	b.ReportAllocs()
	for b.Loop() {
		if m, err := c.GetMany(ctx, keys); err != nil || len(m) != 100 {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetParallel(b *testing.B) {
	c, _ := setup(b)
	c.Set(ctx, "bench", "value")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := c.Get(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
