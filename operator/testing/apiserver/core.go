package main

// A minimal core/v1 group (namespaces, events) beside the CRDs, stored in the same etcd.
// kube-apiserver's own registries live in k8s.io/kubernetes, which cannot be imported cheaply,
// so these are small generic stores: v1 types serve as their own internal version, names are
// validated, namespaces are created Active and deleted at once (no namespace controller
// empties them), events keep what they are given. Enough for kopf posting events, kubectl
// get/describe/create namespace, and tests that read events with field selectors.

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/names"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

var coreInternal = schema.GroupVersion{Group: "", Version: runtime.APIVersionInternal}

// newCoreScheme registers the served core/v1 kinds as both v1 and the internal version, so
// "conversion" between them only sets apiVersion/kind.
func newCoreScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	scheme.AddKnownTypes(coreInternal,
		&corev1.Namespace{}, &corev1.NamespaceList{}, &corev1.Event{}, &corev1.EventList{})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	scheme.AddUnversionedTypes(unversioned,
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
	err := scheme.AddFieldLabelConversionFunc(corev1.SchemeGroupVersion.WithKind("Event"),
		func(label, value string) (string, string, error) {
			if _, ok := eventFields(&corev1.Event{})[label]; ok {
				return label, value, nil
			}
			return "", "", fmt.Errorf("field label not supported: %s", label)
		})
	return scheme, err
}

func eventFields(e *corev1.Event) fields.Set {
	return fields.Set{
		"metadata.name":                  e.Name,
		"metadata.namespace":             e.Namespace,
		"involvedObject.kind":            e.InvolvedObject.Kind,
		"involvedObject.namespace":       e.InvolvedObject.Namespace,
		"involvedObject.name":            e.InvolvedObject.Name,
		"involvedObject.uid":             string(e.InvolvedObject.UID),
		"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
		"reason":                         e.Reason,
		"reportingComponent":             e.ReportingController,
		"source":                         e.Source.Component,
		"type":                           e.Type,
	}
}

// strategy is the create/update/delete policy shared by both kinds.
type strategy struct {
	runtime.ObjectTyper
	names.NameGenerator
	namespaced bool
	prepare    func(obj, old runtime.Object) // old is nil on create
	validate   func(obj runtime.Object) field.ErrorList
}

func (s strategy) NamespaceScoped() bool { return s.namespaced }
func (s strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	if s.prepare != nil {
		s.prepare(obj, nil)
	}
}
func (s strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	if s.validate != nil {
		return s.validate(obj)
	}
	return nil
}
func (strategy) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }
func (strategy) Canonicalize(runtime.Object)                               {}
func (strategy) AllowCreateOnUpdate(context.Context) bool                  { return false }
func (s strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	if s.prepare != nil {
		s.prepare(obj, old)
	}
}
func (s strategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}
func (strategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}
func (strategy) AllowUnconditionalUpdate(context.Context) bool { return true }

func validateName(name string, namespaced bool) field.ErrorList {
	var errs field.ErrorList
	validate := validation.NameIsDNSSubdomain
	if !namespaced {
		validate = validation.ValidateNamespaceName
	}
	for _, msg := range validate(name, false) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), name, msg))
	}
	return errs
}

func installCoreV1(server *genericapiserver.GenericAPIServer, etcd genericoptions.EtcdOptions) error {
	scheme, err := newCoreScheme()
	if err != nil {
		return err
	}
	codecs := serializer.NewCodecFactory(scheme)
	storageConfig := etcd.StorageConfig
	storageConfig.Prefix = "/registry/core"
	storageConfig.Codec = codecs.LegacyCodec(corev1.SchemeGroupVersion)
	storageConfig.EncodeVersioner = corev1.SchemeGroupVersion
	etcd.WatchCacheSizes = nil
	restOptions := etcd.CreateRESTOptionsGetter(&genericoptions.SimpleStorageFactory{StorageConfig: storageConfig}, nil)

	namespaces, err := newStore(scheme, restOptions, "namespaces", "namespace",
		func() runtime.Object { return &corev1.Namespace{} },
		func() runtime.Object { return &corev1.NamespaceList{} },
		strategy{
			ObjectTyper: scheme, NameGenerator: names.SimpleNameGenerator, namespaced: false,
			prepare: func(obj, old runtime.Object) {
				ns := obj.(*corev1.Namespace)
				if old != nil {
					ns.Status = old.(*corev1.Namespace).Status
				}
				if ns.Status.Phase == "" {
					ns.Status.Phase = corev1.NamespaceActive
				}
				if ns.Labels == nil {
					ns.Labels = map[string]string{}
				}
				ns.Labels[corev1.LabelMetadataName] = ns.Name
			},
			validate: func(obj runtime.Object) field.ErrorList {
				return validateName(obj.(*corev1.Namespace).Name, false)
			},
		},
		storage.DefaultClusterScopedAttr, namespaceTable)
	if err != nil {
		return err
	}
	events, err := newStore(scheme, restOptions, "events", "event",
		func() runtime.Object { return &corev1.Event{} },
		func() runtime.Object { return &corev1.EventList{} },
		strategy{
			ObjectTyper: scheme, NameGenerator: names.SimpleNameGenerator, namespaced: true,
			validate: func(obj runtime.Object) field.ErrorList {
				e := obj.(*corev1.Event)
				errs := validateName(e.Name, true)
				if e.InvolvedObject.Namespace != "" && e.InvolvedObject.Namespace != e.Namespace {
					errs = append(errs, field.Invalid(field.NewPath("involvedObject", "namespace"),
						e.InvolvedObject.Namespace, "does not match event.namespace"))
				}
				return errs
			},
		},
		func(obj runtime.Object) (labels.Set, fields.Set, error) {
			e, ok := obj.(*corev1.Event)
			if !ok {
				return nil, nil, fmt.Errorf("not an Event: %T", obj)
			}
			return e.Labels, eventFields(e), nil
		}, eventTable)
	if err != nil {
		return err
	}
	events.TTLFunc = func(runtime.Object, uint64, bool) (uint64, error) {
		return uint64(time.Hour / time.Second), nil
	}

	info := genericapiserver.NewDefaultAPIGroupInfo("", scheme, runtime.NewParameterCodec(scheme), codecs)
	info.VersionedResourcesStorageMap["v1"] = map[string]rest.Storage{
		"namespaces": shortNamed{namespaces, []string{"ns"}},
		"events":     shortNamed{events, []string{"ev"}},
	}
	if err := server.InstallLegacyAPIGroup(genericapiserver.DefaultLegacyAPIPrefix, &info); err != nil {
		return err
	}
	// A real cluster always has these; kubectl and kopf default to "default".
	return server.AddPostStartHook("create-default-namespaces", func(ctx genericapiserver.PostStartHookContext) error {
		client, err := kubernetes.NewForConfig(ctx.LoopbackClientConfig)
		if err != nil {
			return err
		}
		for _, name := range []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic} {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
			if err := retryCreateNamespace(ctx, client, ns); err != nil {
				return err
			}
		}
		return nil
	})
}

func retryCreateNamespace(ctx context.Context, client kubernetes.Interface, ns *corev1.Namespace) error {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		_, err = client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("create namespace %s: %w", ns.Name, err)
}

// shortNamed adds kubectl's short names (discovery reads them from the storage).
type shortNamed struct {
	*genericregistry.Store
	shortNames []string
}

func (s shortNamed) ShortNames() []string { return s.shortNames }

func newStore(scheme *runtime.Scheme, restOptions generic.RESTOptionsGetter, plural, singular string,
	newFunc, newListFunc func() runtime.Object, s strategy, attrs storage.AttrFunc, table rest.TableConvertor) (*genericregistry.Store, error) {
	resource := schema.GroupResource{Resource: plural}
	store := &genericregistry.Store{
		NewFunc:                   newFunc,
		NewListFunc:               newListFunc,
		DefaultQualifiedResource:  resource,
		SingularQualifiedResource: schema.GroupResource{Resource: singular},
		CreateStrategy:            s,
		UpdateStrategy:            s,
		DeleteStrategy:            s,
		TableConvertor:            table,
	}
	err := store.CompleteWithOptions(&generic.StoreOptions{RESTOptions: restOptions, AttrFunc: attrs})
	return store, err
}

// coreOpenAPIDefinitions describes the served core/v1 kinds loosely (metadata typed, the rest
// free-form) for the OpenAPI documents and server-side apply; apiextensions' generated
// definitions cover only its own and the meta/v1 types.
func coreOpenAPIDefinitions(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
	freeForm := func() spec.Schema {
		s := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}}}
		s.AddExtension("x-kubernetes-preserve-unknown-fields", true)
		return s
	}
	str := spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"string"}}}
	object := func(description string, props map[string]spec.Schema) spec.Schema {
		all := map[string]spec.Schema{
			"apiVersion": str,
			"kind":       str,
			"metadata":   {SchemaProps: spec.SchemaProps{Default: map[string]interface{}{}, AllOf: []spec.Schema{{SchemaProps: spec.SchemaProps{Ref: ref(metav1.ObjectMeta{}.OpenAPIModelName())}}}}},
		}
		for k, v := range props {
			all[k] = v
		}
		s := spec.Schema{SchemaProps: spec.SchemaProps{Description: description, Type: []string{"object"}, Properties: all}}
		s.AddExtension("x-kubernetes-preserve-unknown-fields", true)
		return s
	}
	list := func(item string) spec.Schema {
		return spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}, Required: []string{"items"}, Properties: map[string]spec.Schema{
			"apiVersion": str,
			"kind":       str,
			"metadata":   {SchemaProps: spec.SchemaProps{Default: map[string]interface{}{}, AllOf: []spec.Schema{{SchemaProps: spec.SchemaProps{Ref: ref(metav1.ListMeta{}.OpenAPIModelName())}}}}},
			"items": {SchemaProps: spec.SchemaProps{Type: []string{"array"}, Items: &spec.SchemaOrArray{Schema: &spec.Schema{
				SchemaProps: spec.SchemaProps{Default: map[string]interface{}{}, AllOf: []spec.Schema{{SchemaProps: spec.SchemaProps{Ref: ref(item)}}}}}}}},
		}}}
	}
	meta := []string{metav1.ObjectMeta{}.OpenAPIModelName(), metav1.ListMeta{}.OpenAPIModelName()}
	ns, ev := corev1.Namespace{}.OpenAPIModelName(), corev1.Event{}.OpenAPIModelName()
	return map[string]common.OpenAPIDefinition{
		ns: {Schema: object("Namespace (test API server: spec and status free-form)",
			map[string]spec.Schema{"spec": freeForm(), "status": freeForm()}), Dependencies: meta},
		corev1.NamespaceList{}.OpenAPIModelName(): {Schema: list(ns), Dependencies: append(meta, ns)},
		ev: {Schema: object("Event (test API server: fields free-form)", map[string]spec.Schema{
			"involvedObject": freeForm(), "reason": str, "message": str, "type": str,
		}), Dependencies: meta},
		corev1.EventList{}.OpenAPIModelName(): {Schema: list(ev), Dependencies: append(meta, ev)},
	}
}

// tableConvertor prints kubectl's table columns for the served kinds (status for namespaces;
// last seen, type, reason, object, message for events, as kube-apiserver does).
type tableConvertor struct {
	columns []metav1.TableColumnDefinition
	cells   func(obj runtime.Object) []interface{}
}

func (c tableConvertor) ConvertToTable(_ context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	table := &metav1.Table{}
	add := func(obj runtime.Object) error {
		table.Rows = append(table.Rows, metav1.TableRow{Cells: c.cells(obj), Object: runtime.RawExtension{Object: obj}})
		return nil
	}
	var err error
	if meta.IsListType(object) {
		err = meta.EachListItem(object, add)
	} else {
		err = add(object)
	}
	if err != nil {
		return nil, err
	}
	if m, err := meta.ListAccessor(object); err == nil {
		table.ResourceVersion, table.Continue, table.RemainingItemCount = m.GetResourceVersion(), m.GetContinue(), m.GetRemainingItemCount()
	} else if m, err := meta.CommonAccessor(object); err == nil {
		table.ResourceVersion = m.GetResourceVersion()
	}
	if opt, ok := tableOptions.(*metav1.TableOptions); !ok || !opt.NoHeaders {
		table.ColumnDefinitions = c.columns
	}
	return table, nil
}

func age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

var namespaceTable = tableConvertor{
	columns: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name"},
		{Name: "Status", Type: "string"},
		{Name: "Age", Type: "string"},
	},
	cells: func(obj runtime.Object) []interface{} {
		ns := obj.(*corev1.Namespace)
		return []interface{}{ns.Name, string(ns.Status.Phase), age(ns.CreationTimestamp)}
	},
}

var eventTable = tableConvertor{
	columns: []metav1.TableColumnDefinition{
		{Name: "Last Seen", Type: "string"},
		{Name: "Type", Type: "string"},
		{Name: "Reason", Type: "string"},
		{Name: "Object", Type: "string"},
		{Name: "Message", Type: "string"},
	},
	cells: func(obj runtime.Object) []interface{} {
		e := obj.(*corev1.Event)
		last := e.LastTimestamp
		if last.IsZero() {
			last = metav1.Time{Time: e.EventTime.Time}
		}
		if last.IsZero() {
			last = e.CreationTimestamp
		}
		object := strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
		return []interface{}{age(last), e.Type, e.Reason, object, e.Message}
	},
}
