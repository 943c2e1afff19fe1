package main

// The -during hook of the burst mode: a shell command that runs while one side's install burst runs
// (bench/install.sh's BROWSE=1 runs wrk on the catalog with it), run by bash -c. It starts right before the burst's
// first request and gets SIGINT (its whole process group) once the last install is seen installed;
// wrk then stops and prints what it measured over exactly that window. BURST_SIDE (marketplace or
// helm) and BURST_ROUND tell the command which burst it runs beside.

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// duringHook is a started -during command.
type duringHook struct {
	cmd   *exec.Cmd
	side  string
	start time.Time
}

// startDuring starts the -during command for side's burst, or returns nil when there is none.
func (b *burstEnv) startDuring(side string, round int) (*duringHook, error) {
	if b.o.during == "" {
		return nil, nil
	}
	cmd := exec.Command("bash", "-c", b.o.during) // bash: it may call functions the caller exported (export -f)
	cmd.Env = append(os.Environ(), "BURST_SIDE="+side, "BURST_ROUND="+strconv.Itoa(round))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("-during: %w", err)
	}
	// Let the command get going (wrk connects its clients) before the burst's first request.
	time.Sleep(b.o.duringLead)
	return &duringHook{cmd: cmd, side: side, start: time.Now()}, nil
}

// stop interrupts the command's process group and waits for it to finish.
func (h *duringHook) stop() error {
	if h == nil {
		return nil
	}
	window := time.Since(h.start)
	syscall.Kill(-h.cmd.Process.Pid, syscall.SIGINT)
	err := h.cmd.Wait()
	fmt.Printf("during the %s install burst: the -during command ran %.1f s beside it\n", h.side, window.Seconds())
	if err != nil {
		return fmt.Errorf("-during (%s): %w", h.side, err)
	}
	return nil
}
