package target

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/pager"
)

// listTLSSecrets LISTs every TLS Secret of a cluster in one request and
// hands each to each as soon as its bytes have arrived, in the order the
// API server sent them. A typed List reads the whole response (20,000
// Secrets: ~100 MB) before decoding any of it, so parsing the Secrets
// could only start once the LIST was over; read item by item, the parsing
// overlaps the transfer, and no response buffer is held. Each Secret is
// decoded by its generated protobuf code, as a typed List would.
//
// Any error, a response cut short included, fails the listing: a pass must
// never take a partial list for the cluster's Secrets (those left out
// would look absent).
func listTLSSecrets(ctx context.Context, c kubernetes.Interface, each func(*corev1.Secret)) error {
	rc, ok := c.CoreV1().RESTClient().(*rest.RESTClient)
	if !ok || rc == nil {
		return listTyped(ctx, c, each) // a client without HTTP (a fake, in tests)
	}
	body, err := rc.Get().Resource("secrets").
		VersionedParams(&metav1.ListOptions{FieldSelector: tlsSecrets}, scheme.ParameterCodec).
		SetHeader("Accept", runtime.ContentTypeProtobuf+", "+runtime.ContentTypeJSON).
		Stream(ctx)
	if err != nil {
		return err
	}
	defer body.Close()
	return decodeSecretList(body, each)
}

// listTyped is the typed List, for clients that have no REST client.
func listTyped(ctx context.Context, c kubernetes.Interface, each func(*corev1.Secret)) error {
	// One LIST, not pages: an API server (1.33) serves a consistent LIST
	// from its watch cache, but the pages after the first from etcd.
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return c.CoreV1().Secrets("").List(ctx, opts)
	})
	p.PageSize = 0
	return p.EachListItem(ctx, metav1.ListOptions{FieldSelector: tlsSecrets}, func(obj runtime.Object) error {
		s, ok := obj.(*corev1.Secret)
		if !ok {
			return fmt.Errorf("listing TLS Secrets returned a %T", obj)
		}
		each(s)
		return nil
	})
}

// protobufMagic starts every protobuf body of the API server.
var protobufMagic = []byte("k8s\x00")

// maxItem bounds one Secret of a list: the API server stores objects of
// at most 1.5 MiB (etcd's limit); a length past this is a corrupt stream.
const maxItem = 16 << 20

// decodeSecretList reads a SecretList response, protobuf item by item or,
// from a server that answered JSON, whole.
func decodeSecretList(body io.Reader, each func(*corev1.Secret)) error {
	r := &protoReader{r: bufio.NewReaderSize(body, 64<<10)}
	if head, err := r.r.Peek(len(protobufMagic)); err != nil || !bytes.Equal(head, protobufMagic) {
		all, err := io.ReadAll(r.r)
		if err != nil {
			return err
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(all, nil, nil)
		if err != nil {
			return fmt.Errorf("decoding the list: %w", err)
		}
		list, ok := obj.(*corev1.SecretList)
		if !ok {
			return fmt.Errorf("listing TLS Secrets returned a %T", obj)
		}
		for i := range list.Items {
			each(&list.Items[i])
		}
		return nil
	}
	_, _ = r.r.Discard(len(protobufMagic))
	// The body is a runtime.Unknown: typeMeta (1), raw (2: the SecretList),
	// contentEncoding (3), contentType (4), all length-delimited.
	var kind string
	listed := false
	for {
		field, n, err := r.field(math.MaxInt64)
		if err == io.EOF && r.read == int64(len(protobufMagic)) {
			return errors.New("decoding the list: empty response")
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch field {
		case 1:
			if n > maxItem {
				return fmt.Errorf("decoding the list: its type is %d bytes long", n)
			}
			b, err := r.bytes(n, nil)
			if err != nil {
				return err
			}
			var tm runtime.TypeMeta
			if err := tm.Unmarshal(b); err != nil {
				return fmt.Errorf("decoding the list's type: %w", err)
			}
			kind = tm.Kind
		case 2:
			if kind != "SecretList" {
				return fmt.Errorf("listing TLS Secrets returned a %q, not a SecretList", kind)
			}
			if err := r.secretList(n, each); err != nil {
				return err
			}
			listed = true
		case 3:
			if n != 0 {
				return errors.New("decoding the list: its content is encoded, which is not supported")
			}
		default:
			if err := r.skip(n); err != nil {
				return err
			}
		}
	}
	if !listed {
		return errors.New("decoding the list: the response holds no list")
	}
	return nil
}

// protoReader reads protobuf fields off a stream, counting the bytes read.
type protoReader struct {
	r    *bufio.Reader
	read int64
	buf  []byte
}

func (p *protoReader) ReadByte() (byte, error) {
	b, err := p.r.ReadByte()
	if err == nil {
		p.read++
	}
	return b, err
}

// field reads a field's key and length (at most max bytes); every field of
// a list is length-delimited. io.EOF only when the stream ends between
// fields.
func (p *protoReader) field(max uint64) (int, int64, error) {
	start := p.read
	key, err := binary.ReadUvarint(p)
	if err == io.EOF && p.read == start {
		return 0, 0, io.EOF
	}
	if err != nil {
		return 0, 0, truncated(err)
	}
	if key&7 != 2 {
		return 0, 0, fmt.Errorf("decoding the list: field %d has wire type %d, want 2 (length-delimited)", key>>3, key&7)
	}
	n, err := binary.ReadUvarint(p)
	if err != nil {
		return 0, 0, truncated(err)
	}
	if n > max {
		return 0, 0, fmt.Errorf("decoding the list: field %d is %d bytes long, more than it can be", key>>3, n)
	}
	return int(key >> 3), int64(n), nil
}

// bytes reads n bytes into buf (grown as needed) and returns them.
func (p *protoReader) bytes(n int64, buf []byte) ([]byte, error) {
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(p.r, buf); err != nil {
		return nil, truncated(err)
	}
	p.read += n
	return buf, nil
}

func (p *protoReader) skip(n int64) error {
	d, err := p.r.Discard(int(n))
	p.read += int64(d)
	if err != nil {
		return truncated(err)
	}
	return nil
}

// secretList reads a SecretList of n bytes: metadata (1), items (2).
func (p *protoReader) secretList(n int64, each func(*corev1.Secret)) error {
	end := p.read + n
	for i := 0; p.read < end; {
		field, m, err := p.field(maxItem)
		if err != nil {
			return truncated(err)
		}
		if p.read+m > end {
			return errors.New("decoding the list: an item runs past the list's end")
		}
		if field != 2 {
			if err := p.skip(m); err != nil {
				return err
			}
			continue
		}
		// The buffer is reused: generated Unmarshal copies what it keeps.
		if p.buf, err = p.bytes(m, p.buf); err != nil {
			return err
		}
		i++
		s := &corev1.Secret{}
		if err := s.Unmarshal(p.buf); err != nil {
			return fmt.Errorf("decoding item %d of the list: %w", i, err)
		}
		each(s)
	}
	return nil
}

// truncated says a stream that ended inside a field was cut short.
func truncated(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("decoding the list: the response ended early (cut short)")
	}
	return err
}
