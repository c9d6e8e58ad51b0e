package target_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/certfleet/certfleet/reconciler/target"
)

// secretList is a list of n TLS Secrets as an API server would send it.
func secretList(n int) *corev1.SecretList {
	l := &corev1.SecretList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "SecretList"}, ListMeta: metav1.ListMeta{ResourceVersion: "42"}}
	for i := range n {
		l.Items = append(l.Items, corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s-%d", i), Namespace: "web", UID: "uid", ResourceVersion: fmt.Sprint(i),
				Labels: map[string]string{target.LabelManagedBy: target.ManagedByValue}},
			Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: []byte(strings.Repeat("c", 100+i)), corev1.TLSPrivateKeyKey: []byte(fmt.Sprint("key", i))},
		})
	}
	return l
}

func encode(t *testing.T, e runtime.Encoder, obj runtime.Object) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := e.Encode(obj, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func decodeAll(body []byte) ([]*corev1.Secret, error) {
	var got []*corev1.Secret
	err := target.DecodeSecretList(bytes.NewReader(body), func(s *corev1.Secret) { got = append(got, s) })
	return got, err
}

// The streamed LIST decodes what the API server sends, in protobuf or
// JSON, into the Secrets a typed List returns, each its own copy (the read
// buffer is reused between items).
func TestDecodeSecretListReadsEveryItem(t *testing.T) {
	want := secretList(50)
	pb := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	js := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{})
	for name, body := range map[string][]byte{"protobuf": encode(t, pb, want), "json": encode(t, js, want)} {
		t.Run(name, func(t *testing.T) {
			got, err := decodeAll(body)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want.Items) {
				t.Fatalf("decoded %d Secrets, want %d", len(got), len(want.Items))
			}
			for i, s := range got {
				w := &want.Items[i]
				if s.Name != w.Name || s.ResourceVersion != w.ResourceVersion || s.Labels[target.LabelManagedBy] != target.ManagedByValue ||
					!bytes.Equal(s.Data[corev1.TLSCertKey], w.Data[corev1.TLSCertKey]) || !bytes.Equal(s.Data[corev1.TLSPrivateKeyKey], w.Data[corev1.TLSPrivateKeyKey]) {
					t.Errorf("item %d decoded as %s/%s rv %s data %q, want %s/%s rv %s", i, s.Namespace, s.Name, s.ResourceVersion, s.Data, w.Namespace, w.Name, w.ResourceVersion)
				}
			}
		})
	}
}

// A response cut short fails the listing wherever it was cut: a partial
// list would make the Secrets left out look absent.
func TestDecodeSecretListFailsOnATruncatedResponse(t *testing.T) {
	body := encode(t, protobuf.NewSerializer(scheme.Scheme, scheme.Scheme), secretList(20))
	for _, cut := range []int{0, 2, 4, 5, 9, 30, len(body) / 2, len(body) - 40, len(body) - 1} {
		if got, err := decodeAll(body[:cut]); err == nil {
			t.Errorf("a response cut at %d of %d bytes decoded as %d Secrets, without an error", cut, len(body), len(got))
		}
	}
}

// A protobuf body that is not a SecretList (another kind) is refused.
func TestDecodeSecretListRefusesAnotherKind(t *testing.T) {
	cms := &corev1.ConfigMapList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMapList"},
		Items: []corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "web"}}}}
	body := encode(t, protobuf.NewSerializer(scheme.Scheme, scheme.Scheme), cms)
	if got, err := decodeAll(body); err == nil || !strings.Contains(err.Error(), "ConfigMapList") {
		t.Errorf("a ConfigMapList decoded as %d Secrets, error %v; want an error naming the kind", len(got), err)
	}
}
