package marketplace

import (
	"strings"
	"testing"
)

func TestVMHostAdmit(t *testing.T) {
	h := VMHost{CPUs: 2, MemoryMiB: 4096, CPUOvercommit: 4, MemoryOvercommit: 1}
	if got := h.Capacity(); got != (VMSize{VCPUs: 8, MemoryMiB: 4096}) {
		t.Fatalf("capacity %+v", got)
	}
	if err := h.Admit(VMSize{VCPUs: 6, MemoryMiB: 3072}, VMSize{VCPUs: 2, MemoryMiB: 1024}); err != nil {
		t.Fatalf("a guest that fills the host exactly is refused: %v", err)
	}
	err := h.Admit(VMSize{VCPUs: 7, MemoryMiB: 3584}, VMSize{VCPUs: 2, MemoryMiB: 1024})
	if ErrorCode(err) != ECONFLICT || !strings.Contains(ErrorMessage(err), "needs 2 vCPUs and 1024 MiB; the VM host has 1 vCPU and 512 MiB free") {
		t.Fatalf("over-booking: %v", err)
	}
	// More used than the host has (a ratio lowered since): free is nothing, never negative.
	err = h.Admit(VMSize{VCPUs: 9, MemoryMiB: 5000}, VMSize{VCPUs: 1, MemoryMiB: 64})
	if !strings.Contains(ErrorMessage(err), "has 0 vCPUs and 0 MiB free") {
		t.Fatalf("over-booked host: %v", err)
	}
	// Ratios below 1 keep room for the host; the product is not lost to rounding.
	if got := (VMHost{CPUs: 10, MemoryMiB: 1000, CPUOvercommit: 0.3, MemoryOvercommit: 0.9}).Capacity(); got != (VMSize{VCPUs: 3, MemoryMiB: 900}) {
		t.Fatalf("capacity %+v", got)
	}
}
