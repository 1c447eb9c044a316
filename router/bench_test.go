package router

import "testing"

// BenchmarkClassify measures the common case: the typical mix, all decided
// on the fast path.
func BenchmarkClassify(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Classify(typicalMix[i%len(typicalMix)])
	}
}

// BenchmarkClassifyGolden runs the whole golden table, parser path included.
func BenchmarkClassifyGolden(b *testing.B) {
	entries, _ := readGolden(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		Classify(entries[i%len(entries)].stmt)
	}
}

// BenchmarkClassifyParser measures one statement that needs the parser.
func BenchmarkClassifyParser(b *testing.B) {
	const sql = "SELECT * FROM (SELECT a FROM t) AS d (x) WHERE x > 1"
	if c := Classify(sql); c.Flags&FlagFastPath != 0 {
		b.Fatalf("Classify(%q) = %v: decided on the fast path", sql, c)
	}
	b.ReportAllocs()
	for b.Loop() {
		Classify(sql)
	}
}
