package main

// /apis for a standalone apiextensions server. In a real cluster kube-aggregator serves /apis
// (apiextensions-apiserver turns its own discovery off and serves only /apis/<group>[/<v>]),
// so without this kubectl and client discovery find no groups. The aggregated (v2) form comes
// from the server's aggregated discovery manager, which the CRD discovery controller keeps up
// to date; the legacy APIGroupList is built per request from the CRD lister.

import (
	"net/http"
	"sort"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver"
	listers "k8s.io/apiextensions-apiserver/pkg/client/listers/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apiserver/pkg/endpoints/discovery"
	discoveryendpoint "k8s.io/apiserver/pkg/endpoints/discovery/aggregated"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/util/notfoundhandler"
)

var notFound = notfoundhandler.New(apiserver.Codecs, genericapifilters.NoMuxAndDiscoveryIncompleteKey)

// apisHandler is handed to the apiextensions server as its delegate: it sees /apis and every
// request no CRD matched.
type apisHandler struct {
	server    *apiserver.CustomResourceDefinitions // set once the server exists
	addresses discovery.Addresses
	once      sync.Once
	wrapped   http.Handler
}

func (h *apisHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if h.server == nil || (req.URL.Path != "/apis" && req.URL.Path != "/apis/") {
		// As kube-apiserver does: 503 + Retry-After until the CRD informer has synced (a 404
		// then would tell kopf or a client that a served resource does not exist), 404 after.
		notFound.ServeHTTP(w, req)
		return
	}
	h.once.Do(func() {
		legacy := http.HandlerFunc(h.serveGroupList)
		aggregated := h.server.GenericAPIServer.AggregatedDiscoveryGroupManager
		h.wrapped = discoveryendpoint.WrapAggregatedDiscoveryToHandler(legacy, aggregated, aggregated)
	})
	h.wrapped.ServeHTTP(w, req)
}

func (h *apisHandler) serveGroupList(w http.ResponseWriter, req *http.Request) {
	root := discovery.NewRootAPIsHandler(h.addresses, apiserver.Codecs)
	own, err := h.server.GenericAPIServer.DiscoveryGroupManager.Groups(req.Context(), req)
	if err == nil {
		for _, g := range own {
			root.AddGroup(g)
		}
	}
	lister := h.server.Informers.Apiextensions().V1().CustomResourceDefinitions().Lister()
	for _, g := range crdGroups(lister) {
		root.AddGroup(g)
	}
	root.ServeHTTP(w, req)
}

// crdGroups lists the groups of established CRDs, versions in Kubernetes priority order (the
// preferred version first), as kube-aggregator would.
func crdGroups(lister listers.CustomResourceDefinitionLister) []metav1.APIGroup {
	crds, err := lister.List(labels.Everything())
	if err != nil {
		return nil
	}
	versionsByGroup := map[string]map[string]bool{}
	for _, crd := range crds {
		if !established(crd) {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			if versionsByGroup[crd.Spec.Group] == nil {
				versionsByGroup[crd.Spec.Group] = map[string]bool{}
			}
			versionsByGroup[crd.Spec.Group][v.Name] = true
		}
	}
	names := make([]string, 0, len(versionsByGroup))
	for name := range versionsByGroup {
		names = append(names, name)
	}
	sort.Strings(names)
	groups := make([]metav1.APIGroup, 0, len(names))
	for _, name := range names {
		var versions []string
		for v := range versionsByGroup[name] {
			versions = append(versions, v)
		}
		sort.Slice(versions, func(i, j int) bool {
			return version.CompareKubeAwareVersionStrings(versions[i], versions[j]) > 0
		})
		group := metav1.APIGroup{Name: name}
		for _, v := range versions {
			group.Versions = append(group.Versions, metav1.GroupVersionForDiscovery{GroupVersion: name + "/" + v, Version: v})
		}
		group.PreferredVersion = group.Versions[0]
		groups = append(groups, group)
	}
	return groups
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}
