// Command benchsum summarises `go test -bench` output read from stdin: for
// every benchmark and metric it prints the median of the runs (-count) with
// their min and max, in Markdown. scripts/bench.sh pipes into it.
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var gomaxprocs = regexp.MustCompile(`-\d+$`)

func main() {
	type key struct{ pkg, name, unit string }
	values := map[key][]float64{}
	var order []key
	pkg := ""
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/kelvin-gw/kelvin/")
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := gomaxprocs.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			k := key{pkg, name, f[i+1]}
			if k.unit == "ns/op" && v == 0 {
				continue // a benchmark that reports its own rate instead
			}
			if _, seen := values[k]; !seen {
				order = append(order, k)
			}
			values[k] = append(values[k], v)
		}
	}
	fmt.Println("| package | benchmark | metric | median | min – max | runs |")
	fmt.Println("|---|---|---|---:|---:|---:|")
	for _, k := range order {
		vs := values[k]
		slices.Sort(vs)
		med := vs[len(vs)/2]
		if len(vs)%2 == 0 {
			med = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
		}
		fmt.Printf("| %s | %s | %s | %s | %s – %s | %d |\n", k.pkg, k.name, k.unit, num(med), num(vs[0]), num(vs[len(vs)-1]), len(vs))
	}
}

func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}
