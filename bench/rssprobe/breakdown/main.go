// Command breakdown tells what a process's resident memory is: its VmRSS split into RssAnon and RssFile,
// how much of the file part is mapped in 2 MB pages (FilePmdMapped: the kernel maps a whole huge page of
// the binary when its page cache holds one, so a single touched byte can cost 2 MB of RSS), and, for the
// process's own executable, how many kB of each ELF section (.text, .rodata, .gopclntab, ...) are
// resident, read from /proc/PID/pagemap (root only). See bench/rssprobe/rss.sh.
//
//	breakdown PID
//	breakdown -evict FILE   # drop FILE's clean pages from the page cache (before starting it), so the
//	                        # next start reads it from disk as after a reboot; affects nothing else
package main

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	evict := flag.String("evict", "", "drop this file's pages from the page cache and exit")
	flag.Parse()
	var err error
	if *evict != "" {
		err = evictFile(*evict)
	} else {
		err = report(flag.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "breakdown:", err)
		os.Exit(1)
	}
}

func evictFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	const fadvDontNeed = 4 // POSIX_FADV_DONTNEED
	if _, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0); errno != 0 {
		return fmt.Errorf("fadvise %s: %w", path, errno)
	}
	return nil
}

func report(pid string) error {
	if _, err := strconv.Atoi(pid); err != nil {
		return fmt.Errorf("usage: breakdown PID")
	}
	status, err := fields("/proc/"+pid+"/status", "VmRSS:", "RssAnon:", "RssFile:")
	if err != nil {
		return err
	}
	rollup, err := fields("/proc/"+pid+"/smaps_rollup", "FilePmdMapped:")
	if err != nil {
		return err
	}
	fmt.Printf("VmRSS %d kB = RssAnon %d kB + RssFile %d kB (of which mapped in 2 MB pages: %d kB)\n",
		status["VmRSS:"], status["RssAnon:"], status["RssFile:"], rollup["FilePmdMapped:"])
	exe, err := os.Readlink("/proc/" + pid + "/exe")
	if err != nil {
		return err
	}
	resident, total, err := sections(pid, exe)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(resident))
	for n := range total {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return resident[names[i]] > resident[names[j]] })
	for _, n := range names {
		if resident[n] > 0 {
			fmt.Printf("  %-14s %7d kB resident of %7d kB\n", n, resident[n], total[n])
		}
	}
	return nil
}

// fields reads "Name: value kB" lines of a /proc file.
func fields(path string, names ...string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		w := strings.Fields(s.Text())
		for _, n := range names {
			if len(w) >= 2 && w[0] == n {
				out[n], _ = strconv.Atoi(w[1])
			}
		}
	}
	return out, s.Err()
}

// sections counts the resident pages of exe's mappings by the ELF section they hold, in kB.
func sections(pid, exe string) (resident, total map[string]int, err error) {
	bin, err := elf.Open(exe)
	if err != nil {
		return nil, nil, err
	}
	defer bin.Close()
	sectionAt := func(addr uint64) string {
		for _, s := range bin.Sections {
			if s.Addr != 0 && addr+4096 > s.Addr && addr < s.Addr+s.Size {
				return s.Name
			}
		}
		return "(other)"
	}
	maps, err := os.ReadFile("/proc/" + pid + "/maps")
	if err != nil {
		return nil, nil, err
	}
	pagemap, err := os.Open("/proc/" + pid + "/pagemap")
	if err != nil {
		return nil, nil, err
	}
	defer pagemap.Close()
	resident, total = map[string]int{}, map[string]int{}
	for _, line := range strings.Split(string(maps), "\n") {
		w := strings.Fields(line)
		if len(w) < 6 || w[5] != exe {
			continue
		}
		from, to, _ := strings.Cut(w[0], "-")
		start, _ := strconv.ParseUint(from, 16, 64)
		end, _ := strconv.ParseUint(to, 16, 64)
		entries := make([]byte, (end-start)/4096*8)
		if _, err := pagemap.ReadAt(entries, int64(start/4096*8)); err != nil {
			return nil, nil, fmt.Errorf("pagemap (needs root): %w", err)
		}
		for i := 0; i < len(entries); i += 8 {
			name := sectionAt(start + uint64(i/8)*4096)
			total[name] += 4
			if binary.LittleEndian.Uint64(entries[i:])>>63 == 1 { // bit 63: page present
				resident[name] += 4
			}
		}
	}
	return resident, total, nil
}
