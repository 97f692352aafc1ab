// Package manifest decodes Kubernetes manifests strictly into the API types,
// for the tests of the examples in deploy/kubernetes and of the Helm chart.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/apivideo-exporter/apivideo_exporter/dashboards"
)

// PodMonitor is the part of monitoring.coreos.com/v1 PodMonitor the examples
// and the chart use. Decoded strictly: a field that is not here fails, so
// extend the struct (with the operator's field names) to use more.
type PodMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		JobLabel            string               `json:"jobLabel,omitempty"`
		PodTargetLabels     []string             `json:"podTargetLabels,omitempty"`
		Selector            metav1.LabelSelector `json:"selector"`
		NamespaceSelector   *NamespaceSelector   `json:"namespaceSelector,omitempty"`
		PodMetricsEndpoints []Endpoint           `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// ServiceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the
// chart uses, decoded strictly.
type ServiceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		TargetLabels      []string             `json:"targetLabels,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *NamespaceSelector   `json:"namespaceSelector,omitempty"`
		Endpoints         []Endpoint           `json:"endpoints"`
	} `json:"spec"`
}

// NamespaceSelector selects the namespaces of a PodMonitor or ServiceMonitor.
type NamespaceSelector struct {
	Any        bool     `json:"any,omitempty"`
	MatchNames []string `json:"matchNames,omitempty"`
}

// Endpoint is a podMetricsEndpoints or endpoints item.
type Endpoint struct {
	Port          string        `json:"port,omitempty"`
	Path          string        `json:"path,omitempty"`
	Scheme        string        `json:"scheme,omitempty"`
	Interval      string        `json:"interval,omitempty"`
	ScrapeTimeout string        `json:"scrapeTimeout,omitempty"`
	HonorLabels   bool          `json:"honorLabels,omitempty"`
	TLSConfig     *TLSConfig    `json:"tlsConfig,omitempty"`
	BasicAuth     *BasicAuth    `json:"basicAuth,omitempty"`
	Relabelings   []Relabelling `json:"relabelings,omitempty"`
	MetricRelabel []Relabelling `json:"metricRelabelings,omitempty"`
}

// TLSConfig is the tlsConfig of an endpoint or a ScrapeConfig, in the
// operator's spelling.
type TLSConfig struct {
	CA                 *SecretOrConfigMap        `json:"ca,omitempty"`
	Cert               *SecretOrConfigMap        `json:"cert,omitempty"`
	KeySecret          *corev1.SecretKeySelector `json:"keySecret,omitempty"`
	ServerName         string                    `json:"serverName,omitempty"`
	InsecureSkipVerify bool                      `json:"insecureSkipVerify,omitempty"`
}

// SecretOrConfigMap names a key of a Secret or of a ConfigMap.
type SecretOrConfigMap struct {
	Secret    *corev1.SecretKeySelector    `json:"secret,omitempty"`
	ConfigMap *corev1.ConfigMapKeySelector `json:"configMap,omitempty"`
}

// BasicAuth is the basicAuth of an endpoint or a ScrapeConfig: both halves
// come from Secrets.
type BasicAuth struct {
	Username corev1.SecretKeySelector `json:"username"`
	Password corev1.SecretKeySelector `json:"password"`
}

// Relabelling is a relabel config in the operator's spelling.
type Relabelling struct {
	SourceLabels []string `json:"sourceLabels,omitempty"`
	Separator    string   `json:"separator,omitempty"`
	TargetLabel  string   `json:"targetLabel,omitempty"`
	Regex        string   `json:"regex,omitempty"`
	Replacement  string   `json:"replacement,omitempty"`
	Modulus      uint64   `json:"modulus,omitempty"`
	Action       string   `json:"action,omitempty"`
}

// ScrapeConfig is the part of monitoring.coreos.com/v1alpha1 ScrapeConfig
// the chart uses, decoded strictly.
type ScrapeConfig struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		JobName           string         `json:"jobName,omitempty"`
		MetricsPath       string         `json:"metricsPath,omitempty"`
		ScrapeInterval    string         `json:"scrapeInterval,omitempty"`
		ScrapeTimeout     string         `json:"scrapeTimeout,omitempty"`
		Scheme            string         `json:"scheme,omitempty"`
		TLSConfig         *TLSConfig     `json:"tlsConfig,omitempty"`
		BasicAuth         *BasicAuth     `json:"basicAuth,omitempty"`
		StaticConfigs     []StaticConfig `json:"staticConfigs,omitempty"`
		Relabelings       []Relabelling  `json:"relabelings,omitempty"`
		MetricRelabelings []Relabelling  `json:"metricRelabelings,omitempty"`
	} `json:"spec"`
}

// StaticConfig is a staticConfigs item of a ScrapeConfig.
type StaticConfig struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// PrometheusRule is a monitoring.coreos.com/v1 PrometheusRule, decoded
// strictly.
type PrometheusRule struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta     `json:"metadata"`
	Spec            dashboards.RuleGroups `json:"spec"`
}

// SplitDocuments returns the YAML documents of a file that hold more than
// comments.
func SplitDocuments(data []byte) ([][]byte, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// Decode decodes a YAML document into the API type for its kind, rejecting
// unknown and duplicate fields.
func Decode(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.APIVersion + "/" + tm.Kind {
	case "apps/v1/Deployment":
		obj = &appsv1.Deployment{}
	case "v1/Secret":
		obj = &corev1.Secret{}
	case "v1/Service":
		obj = &corev1.Service{}
	case "v1/ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1/ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "networking.k8s.io/v1/NetworkPolicy":
		obj = &networkingv1.NetworkPolicy{}
	case "monitoring.coreos.com/v1/PodMonitor":
		obj = &PodMonitor{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		obj = &ServiceMonitor{}
	case "monitoring.coreos.com/v1/PrometheusRule":
		obj = &PrometheusRule{}
	case "monitoring.coreos.com/v1alpha1/ScrapeConfig":
		obj = &ScrapeConfig{}
	default:
		return nil, fmt.Errorf("unexpected apiVersion/kind %s/%s", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// DecodeAll splits a multi-document stream and decodes every document.
func DecodeAll(data []byte) ([]any, error) {
	docs, err := SplitDocuments(data)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(docs))
	for i, doc := range docs {
		obj, err := Decode(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		out = append(out, obj)
	}
	return out, nil
}
