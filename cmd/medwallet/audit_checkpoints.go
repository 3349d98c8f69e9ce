package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/medwallet/medwallet/consent"
)

// printForks explains each fork found by the checkpoint audit: the two
// checkpoints (or one and the entries held) and who cosigned each.
func printForks(out io.Writer, forks []consent.ForkReport) {
	for _, f := range forks {
		fmt.Fprintf(out, "fork: feed %s (log %s): %s\n", f.Author, f.Origin, f.Detail)
		for _, e := range f.Evidence {
			if e.Held {
				fmt.Fprintf(out, "  entries held: size %d, root %s\n", e.Size, e.Root)
				continue
			}
			var by []string
			for _, c := range e.Cosigners {
				by = append(by, fmt.Sprintf("%s at %s", c.Witness, time.Unix(c.Time, 0).UTC().Format(time.RFC3339)))
			}
			if len(by) == 0 {
				by = []string{"no witness"}
			}
			fmt.Fprintf(out, "  checkpoint: size %d, root %s, cosigned by %s\n", e.Size, e.Root, strings.Join(by, ", "))
			for _, l := range strings.SplitAfter(strings.TrimSuffix(e.Note, "\n"), "\n") {
				fmt.Fprintf(out, "    %s", strings.TrimSuffix(l, "\n")+"\n")
			}
		}
	}
}
