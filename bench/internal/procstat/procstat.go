// Package procstat reads a process's memory and CPU figures from Linux's
// /proc, for the benchmarks that run the exporter as its own process.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Memory returns the resident memory of pid (VmRSS) and its peak (VmHWM),
// in bytes.
func Memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (rss, hwm int64, err error) {
	var seenRSS, seenHWM bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || (f[0] != "VmRSS:" && f[0] != "VmHWM:") {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parsing %s in /proc status: %w", f[0], err)
		}
		if f[0] == "VmRSS:" {
			rss, seenRSS = kb<<10, true
		} else {
			hwm, seenHWM = kb<<10, true
		}
	}
	if !seenRSS || !seenHWM {
		return 0, 0, fmt.Errorf("no VmRSS or VmHWM in /proc status")
	}
	return rss, hwm, nil
}

// CPUTicks returns the CPU time pid has used, user and system, in clock
// ticks (see ClockTicks).
func CPUTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	ticks, err := parseStat(string(b))
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return ticks, nil
}

func parseStat(s string) (int64, error) {
	// The command name may hold spaces and parentheses: the fields start
	// after the last ')'.
	end := strings.LastIndexByte(s, ')')
	if end < 0 || end+2 > len(s) {
		return 0, fmt.Errorf("no command name in %q", s)
	}
	f := strings.Fields(s[end+2:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("too few fields in %q", s)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("utime or stime is not a number in %q", s)
	}
	return ut + st, nil
}

// ClockTicks returns the clock ticks a second (getconf CLK_TCK), 100 when
// getconf does not say.
func ClockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}
