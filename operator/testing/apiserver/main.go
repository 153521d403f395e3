// Command test-apiserver is a single-process Kubernetes API server for the operator's tests:
// an embedded etcd plus the apiextensions API server (the component that serves every
// CustomResourceDefinition in a real cluster: schema validation, defaulting, pruning, CEL
// rules, the status subresource, resourceVersion conflicts, watch) plus a small core/v1
// group with namespaces and events (core.go), so kubectl, kopf and the Python client work.
//
// It listens on 127.0.0.1 only (HTTPS, self-signed certificate), allows every request
// (authorization always-allow) and authenticates a bearer token it writes into the
// kubeconfig (anonymous requests are accepted as well). It is a test tool, not a cluster.
//
//	test-apiserver --data-dir DIR --port PORT --kubeconfig FILE
//
// Everything it keeps (etcd data, certificate, token, etcd ports) is under --data-dir, so a
// restart with the same flags comes back with the same data, address and credentials.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/storage/wal"
	noopoteltrace "go.opentelemetry.io/otel/trace/noop"

	"k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/anonymous"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/endpoints/discovery"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/apiserver/pkg/util/webhook"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	"k8s.io/kube-openapi/pkg/common"
	netutils "k8s.io/utils/net"
)

const userName = "test-admin"

func main() {
	dataDir := flag.String("data-dir", "", "directory for etcd data, certificate and token (required)")
	port := flag.Int("port", 0, "HTTPS port on 127.0.0.1 (required)")
	kubeconfigPath := flag.String("kubeconfig", "", "write a kubeconfig for this server here (default DATA_DIR/kubeconfig)")
	noFsync := flag.Bool("unsafe-no-fsync", true, "etcd skips fsync: data survives a process restart, not a machine crash")
	verbosity := flag.Int("v", 0, "klog verbosity")
	exitWithParent := flag.Bool("exit-with-parent", false, "shut down when the process that started this one exits")
	flag.Parse()
	if *dataDir == "" || *port <= 0 {
		fmt.Fprintln(os.Stderr, "usage: test-apiserver --data-dir DIR --port PORT [--kubeconfig FILE]")
		os.Exit(2)
	}
	if *kubeconfigPath == "" {
		*kubeconfigPath = filepath.Join(*dataDir, "kubeconfig")
	}
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	_ = klogFlags.Set("v", strconv.Itoa(*verbosity))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *exitWithParent {
		go stopWhenOrphaned(stop)
	}
	if err := run(ctx, *dataDir, *port, *kubeconfigPath, *noFsync); err != nil {
		fmt.Fprintln(os.Stderr, "test-apiserver:", err)
		os.Exit(1)
	}
}

// stopWhenOrphaned cancels the server when its parent dies (the test runner was killed), so
// no server outlives the tests that started it.
func stopWhenOrphaned(stop context.CancelFunc) {
	parent := os.Getppid()
	for range time.Tick(500 * time.Millisecond) {
		if os.Getppid() != parent {
			stop()
			return
		}
	}
}

func run(ctx context.Context, dataDir string, port int, kubeconfigPath string, noFsync bool) error {
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	token, err := loadOrCreateToken(filepath.Join(dataDir, "token"))
	if err != nil {
		return err
	}

	etcd, etcdURL, err := startEtcd(dataDir, noFsync)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer func() {
		etcd.Close()
		<-etcd.Server.StopNotify()
	}()

	o := options.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	o.RecommendedOptions.Etcd.StorageConfig.Transport.ServerList = []string{etcdURL}
	o.RecommendedOptions.SecureServing.BindAddress = netutils.ParseIPSloppy("127.0.0.1")
	o.RecommendedOptions.SecureServing.BindPort = port
	o.RecommendedOptions.SecureServing.ServerCert.CertDirectory = filepath.Join(dataDir, "pki")
	// No remote kube-apiserver to delegate to: authentication and authorization are set
	// below, there is no core API to watch, and no admission webhooks.
	o.RecommendedOptions.Authentication = nil
	o.RecommendedOptions.Authorization = nil
	o.RecommendedOptions.CoreAPI = nil
	o.RecommendedOptions.Admission = nil
	o.RecommendedOptions.Features.EnablePriorityAndFairness = false
	if err := o.ServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	if err := o.Complete(); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	config, err := crdServerConfig(o)
	if err != nil {
		return err
	}
	config.GenericConfig.Authentication.Authenticator = newAuthenticator(token)
	config.GenericConfig.Authorization.Authorizer = authorizerfactory.NewAlwaysAllowAuthorizer()

	apis := &apisHandler{addresses: discovery.DefaultAddresses{DefaultAddress: fmt.Sprintf("127.0.0.1:%d", port)}}
	server, err := config.Complete().New(genericapiserver.NewEmptyDelegateWithCustomHandler(apis))
	if err != nil {
		return fmt.Errorf("apiextensions server: %w", err)
	}
	apis.server = server
	// Open watches would hold a clean shutdown for the request timeout (60 s); tests restart
	// this server often, and clients reconnect anyway.
	server.GenericAPIServer.ShutdownTimeout = time.Second
	if err := installCoreV1(server.GenericAPIServer, *o.RecommendedOptions.Etcd); err != nil {
		return fmt.Errorf("core/v1: %w", err)
	}

	caPEM, err := os.ReadFile(filepath.Join(dataDir, "pki", "apiserver.crt"))
	if err != nil {
		return err
	}
	if err := writeKubeconfig(kubeconfigPath, fmt.Sprintf("https://127.0.0.1:%d", port), caPEM, token); err != nil {
		return err
	}
	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

// crdServerConfig is options.Config without the parts that need a remote kube-apiserver
// (its service lister for conversion webhooks), plus the OpenAPI v2 document kubectl reads.
func crdServerConfig(o *options.CustomResourceDefinitionsServerOptions) (*apiserver.Config, error) {
	if err := o.RecommendedOptions.SecureServing.MaybeDefaultWithSelfSignedCerts(
		"localhost", nil, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	serverConfig := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	if err := o.ServerRunOptions.ApplyTo(&serverConfig.Config); err != nil {
		return nil, err
	}
	if err := o.RecommendedOptions.ApplyTo(serverConfig); err != nil {
		return nil, err
	}
	if err := o.APIEnablement.ApplyTo(&serverConfig.Config, apiserver.DefaultAPIResourceConfigSource(), apiserver.Scheme); err != nil {
		return nil, err
	}
	definitions := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(
		func(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
			defs := generatedopenapi.GetOpenAPIDefinitions(ref)
			for name, def := range coreOpenAPIDefinitions(ref) {
				defs[name] = def
			}
			return defs
		})
	namer := openapinamer.NewDefinitionNamer(apiserver.Scheme, clientgoscheme.Scheme)
	serverConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(definitions, namer)
	serverConfig.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(definitions, namer)
	return &apiserver.Config{
		GenericConfig: serverConfig,
		ExtraConfig: apiserver.ExtraConfig{
			CRDRESTOptionsGetter: options.NewCRDRESTOptionsGetter(*o.RecommendedOptions.Etcd,
				serverConfig.ResourceTransformers, serverConfig.StorageObjectCountTracker),
			ServiceResolver: noServices{},
			AuthResolverWrapper: webhook.NewDefaultAuthenticationInfoResolverWrapper(
				nil, nil, serverConfig.LoopbackClientConfig, noopoteltrace.NewTracerProvider()),
		},
	}, nil
}

// noServices: conversion webhooks would need Services, which this server does not have.
type noServices struct{}

func (noServices) ResolveEndpoint(namespace, name string, port int32) (*url.URL, error) {
	return nil, fmt.Errorf("service %s/%s: this test API server has no Services (no conversion webhooks)", namespace, name)
}

// newAuthenticator accepts the kubeconfig's bearer token (as a cluster admin) and, failing
// that, anonymous requests; authorization allows everything anyway.
func newAuthenticator(token string) authenticator.Request {
	admin := &user.DefaultInfo{Name: userName, Groups: []string{user.SystemPrivilegedGroup, user.AllAuthenticated}}
	tokenAuth := bearertoken.New(authenticator.TokenFunc(func(ctx context.Context, value string) (*authenticator.Response, bool, error) {
		if value != token {
			return nil, false, nil
		}
		return &authenticator.Response{User: admin}, true, nil
	}))
	return union.NewFailOnError(tokenAuth, anonymous.NewAuthenticator(nil))
}

func loadOrCreateToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		return string(b), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := hex.EncodeToString(raw)
	return token, os.WriteFile(path, []byte(token), 0o600)
}

// etcdPorts are kept in the data dir so that a restart uses the member's recorded peer URL.
type etcdPorts struct {
	Client int `json:"client"`
	Peer   int `json:"peer"`
}

func startEtcd(dataDir string, noFsync bool) (*embed.Etcd, string, error) {
	portsPath := filepath.Join(dataDir, "etcd-ports.json")
	var ports etcdPorts
	if b, err := os.ReadFile(portsPath); err == nil {
		_ = json.Unmarshal(b, &ports)
	}
	if ports.Client == 0 || !portFree(ports.Client) || !portFree(ports.Peer) {
		var err error
		if ports.Client, err = freePort(); err != nil {
			return nil, "", err
		}
		if ports.Peer, err = freePort(); err != nil {
			return nil, "", err
		}
	}
	b, _ := json.Marshal(ports)
	if err := os.WriteFile(portsPath, b, 0o600); err != nil {
		return nil, "", err
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports.Client)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports.Peer)}

	// etcd preallocates each WAL segment (64 MB by default): tests start many short-lived
	// servers, so keep segments small.
	wal.SegmentSizeBytes = 4 << 20
	cfg := embed.NewConfig()
	cfg.Name = "test-apiserver"
	cfg.Dir = filepath.Join(dataDir, "etcd")
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.UnsafeNoFsync = noFsync
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", errors.New("etcd did not become ready within 60 s")
	}
	return e, clientURL.String(), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// writeKubeconfig writes it atomically (rename), so a reader never sees half a file.
func writeKubeconfig(path, serverURL string, caPEM []byte, token string) error {
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test-apiserver
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: test-apiserver
  context:
    cluster: test-apiserver
    user: %s
    namespace: default
current-context: test-apiserver
`, serverURL, base64.StdEncoding.EncodeToString(caPEM), userName, token, userName)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
