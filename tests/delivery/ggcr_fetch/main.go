// ggcr-fetch reads a Wasm plugin image with go-containerregistry, the library Higress's (Istio's)
// Wasm image fetcher uses, following the fetcher's rules as documented in
// plugin/src/wasm_oci/extract.py, and prints {"digest", "module_sha256", "module_bytes", "rule"}.
//
// It is the test suite's second, independent reader of pushed images: if go-containerregistry
// cannot resolve the manifest, list the layers, read their media types or verify their digests,
// neither can the gateway. Usage: ggcr-fetch REF (registry over plain HTTP; auth from DOCKER_CONFIG).
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	wasmFile         = "plugin.wasm"
	rawWasmMediaType = "application/vnd.module.wasm.content.layer.v1+wasm"
	tarStreamLimitB  = 256 << 20
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ggcr-fetch REF")
		os.Exit(2)
	}
	out, err := fetch(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ggcr-fetch:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func fetch(refText string) (map[string]any, error) {
	ref, err := name.ParseReference(refText, name.Insecure)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(ref, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return nil, err
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	manifest, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	var module []byte
	var rule string
	if manifest.MediaType == types.DockerManifestSchema2 {
		module, err = lastLayerTarGz(img, types.DockerLayer)
		rule = "docker"
	} else {
		module, err = lastLayerTarGz(img, types.OCILayer)
		rule = "oci-tar-gzip"
		if err != nil {
			var rawErr error
			module, rawErr = twoLayersRawWasm(img)
			rule = "oci-raw-wasm"
			err = errors.Join(err, rawErr)
			if rawErr == nil {
				err = nil
			}
		}
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(module)
	return map[string]any{
		"digest": digest.String(), "module_sha256": hex.EncodeToString(sum[:]),
		"module_bytes": len(module), "rule": rule,
	}, nil
}

func lastLayerTarGz(img v1.Image, want types.MediaType) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) == 0 {
		return nil, errors.New("no layers")
	}
	last := layers[len(layers)-1]
	mt, err := last.MediaType()
	if err != nil {
		return nil, err
	}
	if mt != want {
		return nil, fmt.Errorf("last layer is %s, not %s", mt, want)
	}
	rc, err := last.Compressed() // digest-verified by go-containerregistry while read
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	gz, err := gzip.NewReader(rc)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(io.LimitReader(gz, tarStreamLimitB))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New(wasmFile + " not found")
		}
		if err != nil {
			return nil, err
		}
		if filepath.Base(h.Name) == wasmFile {
			buf := make([]byte, h.Size)
			if _, err := io.ReadFull(tr, buf); err != nil {
				return nil, err
			}
			return buf, nil
		}
	}
}

func twoLayersRawWasm(img v1.Image) ([]byte, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != 2 {
		return nil, fmt.Errorf("%d layers, want 2", len(layers))
	}
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, err
		}
		if mt == rawWasmMediaType {
			rc, err := l.Compressed()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}
	}
	return nil, errors.New("no raw wasm layer")
}
