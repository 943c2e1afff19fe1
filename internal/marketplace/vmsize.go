package marketplace

import (
	"math"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// VMLimits are the largest virtual machine an application may ask for (VM_MAX_VCPUS, VM_MAX_MEMORY).
type VMLimits struct {
	MaxVCPUs     int
	MaxMemoryMiB int64
}

// MinVMMemoryMiB is the least memory a guest is given: below it no Linux kernel boots.
const MinVMMemoryMiB = 64

var (
	// cpuFormRE accepts a whole number of vCPUs, bare ("2") or in the seed's free form ("2 vCPUs").
	cpuFormRE = regexp.MustCompile(`(?i)^\s*([0-9]{1,6})\s*(v?cpus?|cores?)?\s*$`)
	// memoryFormRE accepts a Kubernetes quantity (512Mi, 4Gi, 1G) or the seed's free form (4GB RAM).
	memoryFormRE = regexp.MustCompile(`(?i)^\s*([0-9]{1,9}(?:\.[0-9]{1,3})?)\s*(ki|mi|gi|ti|k|m|g|t|kb|mb|gb|tb|kib|mib|gib|tib)\s*(ram|memory)?\s*$`)
)

// memoryUnits are bytes per unit. Kubernetes' K, M, G and T are decimal, as in a Pod spec; the seed's
// free forms (MB, GB) mean what people mean by RAM sizes: binary.
var memoryUnits = map[string]float64{
	"ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40,
	"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
}

// VCPUs is the number of virtual CPUs of a vm application.
func (s *DeploymentSpec) VCPUs() (int, error) {
	m := cpuFormRE.FindStringSubmatch(s.CPU)
	if m == nil {
		return 0, Errorf(EINVALID, "deployment.cpu must be a whole number of vCPUs such as \"2\" or \"2 vCPUs\", got %q", s.CPU)
	}
	n, _ := strconv.Atoi(m[1])
	if n < 1 {
		return 0, Errorf(EINVALID, "deployment.cpu must be at least 1 vCPU, got %q", s.CPU)
	}
	return n, nil
}

// MemoryMiB is the memory of a vm application in MiB, rounded up.
func (s *DeploymentSpec) MemoryMiB() (int64, error) {
	m := memoryFormRE.FindStringSubmatch(s.Memory)
	if m == nil {
		return 0, Errorf(EINVALID, "deployment.memory must be a quantity with a unit such as 512Mi, 4Gi or \"4GB RAM\", got %q", s.Memory)
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	mib := int64(math.Ceil(n * memoryUnits[strings.ToLower(m[2])] / (1 << 20)))
	if mib < MinVMMemoryMiB {
		return 0, Errorf(EINVALID, "deployment.memory must be at least %dMi, got %q", MinVMMemoryMiB, s.Memory)
	}
	return mib, nil
}

// CheckVMLimits refuses a vm application larger than the marketplace's maxima. Zero maxima mean none.
func (s *DeploymentSpec) CheckVMLimits(l VMLimits) error {
	if s.Type != TypeVM {
		return nil
	}
	cpus, err := s.VCPUs()
	if err != nil {
		return err
	}
	if l.MaxVCPUs > 0 && cpus > l.MaxVCPUs {
		return Errorf(EINVALID, "deployment.cpu %q is more than this marketplace's maximum of %d vCPUs (VM_MAX_VCPUS)", s.CPU, l.MaxVCPUs)
	}
	mib, err := s.MemoryMiB()
	if err != nil {
		return err
	}
	if l.MaxMemoryMiB > 0 && mib > l.MaxMemoryMiB {
		return Errorf(EINVALID, "deployment.memory %q is more than this marketplace's maximum of %dMi (VM_MAX_MEMORY)", s.Memory, l.MaxMemoryMiB)
	}
	return nil
}

// ImageURL reports whether a vm application's image is downloaded (an http(s) URL) rather than a file
// of the VM host's image directory.
func (s *DeploymentSpec) ImageURL() bool {
	return strings.HasPrefix(s.Image, "http://") || strings.HasPrefix(s.Image, "https://")
}

// validateVMImage checks the image of a vm application: an http(s) URL, or a path relative to the VM
// host's image directory that stays inside it.
func (s *DeploymentSpec) validateVMImage() error {
	img := s.Image
	if strings.TrimSpace(img) == "" {
		return Errorf(EINVALID, "deployment.image is required for a vm application (a file of the VM host's image directory, or an http(s) URL)")
	}
	if s.ImageURL() {
		if u, err := url.Parse(img); err != nil || u.Host == "" {
			return Errorf(EINVALID, "deployment.image %q is not a valid URL", RedactURLs(img))
		}
		return nil
	}
	if strings.Contains(img, "://") {
		return Errorf(EINVALID, "deployment.image %q: only http and https URLs are downloaded", RedactURLs(img))
	}
	if path.IsAbs(img) || strings.HasPrefix(img, `\`) {
		return Errorf(EINVALID, "deployment.image %q must be relative to the VM host's image directory, not an absolute path", img)
	}
	for _, part := range strings.Split(img, "/") {
		if part == ".." {
			return Errorf(EINVALID, "deployment.image %q must stay inside the VM host's image directory (no \"..\")", img)
		}
	}
	if path.Clean(img) != img {
		return Errorf(EINVALID, "deployment.image %q is not a clean path (try %q)", img, path.Clean(img))
	}
	return nil
}

// ValidateVM checks the image and sizing of a vm application.
func (s *DeploymentSpec) ValidateVM() error {
	if err := s.validateVMImage(); err != nil {
		return err
	}
	if _, err := s.VCPUs(); err != nil {
		return err
	}
	_, err := s.MemoryMiB()
	return err
}
