//go:build !unix

package fhirscope

import "time"

func cpuTime() time.Duration { return 0 }
