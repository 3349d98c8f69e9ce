// Package churnsim is a churn simulation of medwallet's storage, in one
// process (no network, no peer processes): records erasure-coded k of n
// with Reed-Solomon (github.com/klauspost/reedsolomon, as vault codes
// them) on small shares, placed on distinct peers, while peers leave for
// good (with what they hold) and new, empty peers join, over a simulated
// year; with repair or without. Repair is modelled as issue 14 specifies
// it: a repairer checks every record once per RepairEvery, and when the
// healthy shares of a record are at most Threshold (and at least k), it
// reads k shares, rebuilds the missing ones with reedsolomon's
// Reconstruct, checks them against the shares first made, and writes
// them to live peers that hold no share of the record. Every byte read
// and written is counted. docs/bench.md has the figures
// (scripts/churn-sim.sh).
package churnsim

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/klauspost/reedsolomon"
)

// Config is one simulation.
type Config struct {
	Records, Peers int
	K, N           int
	ShareSize      int // bytes of one share (the record is K*ShareSize bytes)
	// Lifetime is a peer's mean lifetime: each live peer leaves for good
	// with probability Step/Lifetime every Step, and a new empty peer
	// joins after JoinDelay, so the network keeps about Peers peers.
	Lifetime, JoinDelay time.Duration
	// Duration is the simulated time, Step its resolution.
	Duration, Step time.Duration
	// Repair turns the repairer on; it runs every RepairEvery and repairs
	// a record whose healthy shares are at most Threshold.
	Repair      bool
	RepairEvery time.Duration
	Threshold   int
	Seed        uint64
}

// Default is the figure: 1,000 records, 20 peers, k=3 of n=5,
// peers living 6 months on average (40 departures and 40 joins a year),
// a year in steps of an hour, repair daily at n-1 healthy shares.
func Default() Config {
	return Config{Records: 1000, Peers: 20, K: 3, N: 5, ShareSize: 1024,
		Lifetime: 182 * 24 * time.Hour, JoinDelay: 24 * time.Hour,
		Duration: 365 * 24 * time.Hour, Step: time.Hour,
		RepairEvery: 24 * time.Hour, Threshold: 4, Seed: 1}
}

// Result is what a simulation measured.
type Result struct {
	Config
	Departures, Joins int
	Lost              int // records that fell below k healthy shares
	// BytesLost are the share bytes that left with departing peers;
	// Rebuilt the share bytes the repairer wrote back; Read the bytes
	// it read to rebuild them.
	BytesLost, Rebuilt, Read int64
	Repairs                  int // records repaired (one read of k shares each)
	// Stored is the share bytes held at the end, Live the plaintext
	// bytes of the records still readable (for the overhead).
	Stored, Live int64
}

// ReadPerRebuilt is the bytes read per byte rebuilt: at most k (the
// bound: k shares read per rebuilt share), less when one read rebuilds
// several shares.
func (r Result) ReadPerRebuilt() float64 {
	if r.Rebuilt == 0 {
		return 0
	}
	return float64(r.Read) / float64(r.Rebuilt)
}

// TrafficPerLost is the repair traffic (read + written) per byte lost.
func (r Result) TrafficPerLost() float64 {
	if r.BytesLost == 0 {
		return 0
	}
	return float64(r.Read+r.Rebuilt) / float64(r.BytesLost)
}

// Overhead is the bytes stored per byte of live record.
func (r Result) Overhead() float64 {
	if r.Live == 0 {
		return 0
	}
	return float64(r.Stored) / float64(r.Live)
}

type record struct {
	shards  [][]byte // the shares first made, to check rebuilt ones
	holder  []int    // peer holding share i, -1 when lost
	lost    bool
	healthy int
}

// Run runs one simulation.
func Run(c Config) (Result, error) {
	res := Result{Config: c}
	rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	// Churn has a generator of its own, so that runs with and without
	// repair see the same departures.
	churn := rand.New(rand.NewPCG(c.Seed^0x5851f42d4c957f2d, c.Seed))
	enc, err := reedsolomon.New(c.K, c.N-c.K)
	if err != nil {
		return res, err
	}
	alive := make([]bool, c.Peers)
	for i := range alive {
		alive[i] = true
	}
	held := make([]map[int]int, c.Peers) // peer -> record -> share index
	for i := range held {
		held[i] = map[int]int{}
	}
	recs := make([]*record, c.Records)
	for r := range recs {
		data := make([]byte, c.K*c.ShareSize)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		shards, err := enc.Split(data)
		if err != nil {
			return res, err
		}
		if err := enc.Encode(shards); err != nil {
			return res, err
		}
		rec := &record{shards: shards, holder: make([]int, c.N), healthy: c.N}
		peers := pickLive(rng, alive, c.N, nil)
		if len(peers) < c.N {
			return res, fmt.Errorf("churnsim: %d peers cannot hold %d shares", c.Peers, c.N)
		}
		for i, p := range peers {
			rec.holder[i] = p
			held[p][r] = i
		}
		recs[r] = rec
	}
	var joins []time.Duration // when pending peers join
	pLeave := float64(c.Step) / float64(c.Lifetime)
	for t := time.Duration(0); t < c.Duration; t += c.Step {
		// Departures: a peer leaves with everything it holds.
		for p := range alive {
			if !alive[p] || churn.Float64() >= pLeave {
				continue
			}
			alive[p] = false
			res.Departures++
			for r, i := range held[p] {
				rec := recs[r]
				rec.holder[i] = -1
				rec.healthy--
				if !rec.lost {
					res.BytesLost += int64(c.ShareSize)
				}
				if rec.healthy < c.K && !rec.lost {
					rec.lost = true
					res.Lost++
				}
			}
			held[p] = nil
			joins = append(joins, t+c.JoinDelay)
		}
		// Joins: new, empty peers.
		for len(joins) > 0 && joins[0] <= t {
			joins = joins[1:]
			alive = append(alive, true)
			held = append(held, map[int]int{})
			res.Joins++
		}
		if !c.Repair || t%c.RepairEvery != 0 {
			continue
		}
		for r, rec := range recs {
			if rec.lost || rec.healthy > c.Threshold || rec.healthy == c.N {
				continue
			}
			if err := repair(enc, rng, c, r, rec, alive, held, &res); err != nil {
				return res, err
			}
		}
	}
	for _, rec := range recs {
		if rec.lost {
			continue
		}
		res.Live += int64(c.K * c.ShareSize)
		res.Stored += int64(rec.healthy * c.ShareSize)
	}
	return res, nil
}

// repair reads k healthy shares of rec, rebuilds the missing ones and
// writes them to live peers holding no share of it.
func repair(enc reedsolomon.Encoder, rng *rand.Rand, c Config, r int, rec *record, alive []bool, held []map[int]int, res *Result) error {
	work := make([][]byte, c.N)
	read := 0
	for i, h := range rec.holder {
		if h >= 0 && read < c.K {
			work[i] = bytes.Clone(rec.shards[i])
			read++
		}
	}
	if err := enc.Reconstruct(work); err != nil {
		return fmt.Errorf("churnsim: record %d: %w", r, err)
	}
	res.Read += int64(read * c.ShareSize)
	res.Repairs++
	var avoid []int
	for _, h := range rec.holder {
		if h >= 0 {
			avoid = append(avoid, h)
		}
	}
	var missing []int
	for i, h := range rec.holder {
		if h < 0 {
			missing = append(missing, i)
		}
	}
	to := pickLive(rng, alive, len(missing), avoid)
	for j, i := range missing {
		if j >= len(to) {
			break // too few live peers: the rest waits for the next cycle
		}
		if !bytes.Equal(work[i], rec.shards[i]) {
			return fmt.Errorf("churnsim: record %d: share %d rebuilt wrong", r, i)
		}
		rec.holder[i] = to[j]
		held[to[j]][r] = i
		rec.healthy++
		res.Rebuilt += int64(c.ShareSize)
	}
	return nil
}

// pickLive picks up to n distinct live peers not in avoid, at random.
func pickLive(rng *rand.Rand, alive []bool, n int, avoid []int) []int {
	var cand []int
	for p, a := range alive {
		if a && !contains(avoid, p) {
			cand = append(cand, p)
		}
	}
	rng.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
	return cand[:min(n, len(cand))]
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
