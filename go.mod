module github.com/ack-virtual-node/ack-virtual-node

go 1.26.0

require (
	github.com/aliyun/alibaba-cloud-sdk-go v1.63.107 // indirect
	github.com/aliyun/credentials-go v1.4.14 // indirect
	github.com/kelseyhightower/envconfig v1.4.0 // indirect
	github.com/virtual-kubelet/virtual-kubelet v1.13.0 // indirect
	helm.sh/helm/v3 v3.22.0 // indirect
	k8s.io/api v0.37.2 // indirect
	k8s.io/apimachinery v0.37.2 // indirect
	k8s.io/client-go v0.37.2 // indirect
)
