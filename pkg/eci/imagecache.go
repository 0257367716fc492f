package eci

import "context"

// Image cache statuses of DescribeImageCaches (ImageCaches[].Status).
const (
	ImageCachePreparing    = "Preparing"
	ImageCacheCreating     = "Creating"
	ImageCacheReady        = "Ready"
	ImageCacheFailed       = "Failed"
	ImageCacheUpdating     = "Updating"
	ImageCacheUpdateFailed = "UpdateFailed"
)

// MaxImageCacheImages is the most images one image cache takes (Image.N).
const MaxImageCacheImages = 20

// CreateImageCacheRequest holds the published parameters of
// CreateImageCache the ImageCache controller sends. ClientToken makes a
// retried create return the first cache instead of a second one.
type CreateImageCacheRequest struct {
	ImageCacheName           string                    `eci:"ImageCacheName"`
	Images                   []string                  `eci:"Image"`
	SecurityGroupId          string                    `eci:"SecurityGroupId"`
	VSwitchId                string                    `eci:"VSwitchId"`
	ImageCacheSize           int                       `eci:"ImageCacheSize"`
	RetentionDays            int                       `eci:"RetentionDays"`
	ImageRegistryCredentials []ImageRegistryCredential `eci:"ImageRegistryCredential"`
	AutoMatchImageCache      bool                      `eci:"AutoMatchImageCache"`
	ResourceGroupId          string                    `eci:"ResourceGroupId"`
	Tags                     []Tag                     `eci:"Tag"`
	ClientToken              string                    `eci:"ClientToken"`
}

// CreateImageCacheResponse is the result of CreateImageCache.
type CreateImageCacheResponse struct {
	RequestId        string `json:"RequestId"`
	ImageCacheId     string `json:"ImageCacheId"`
	ContainerGroupId string `json:"ContainerGroupId"`
}

// DescribeImageCachesRequest filters DescribeImageCaches: by id (a
// comma-separated list), by name, or by tags.
type DescribeImageCachesRequest struct {
	ImageCacheId   string `eci:"ImageCacheId"`
	ImageCacheName string `eci:"ImageCacheName"`
	Tags           []Tag  `eci:"Tag"`
	Limit          int    `eci:"Limit"`
	NextToken      string `eci:"NextToken"`
}

// DescribeImageCachesResponse is one page of DescribeImageCaches.
type DescribeImageCachesResponse struct {
	RequestId   string       `json:"RequestId"`
	ImageCaches []ImageCache `json:"ImageCaches"`
	NextToken   string       `json:"NextToken"`
	TotalCount  int          `json:"TotalCount"`
}

// ImageCache is one cache of DescribeImageCaches.
type ImageCache struct {
	ImageCacheId     string            `json:"ImageCacheId"`
	ImageCacheName   string            `json:"ImageCacheName"`
	ContainerGroupId string            `json:"ContainerGroupId"`
	Status           string            `json:"Status"`
	Progress         string            `json:"Progress"`
	SnapshotId       string            `json:"SnapshotId"`
	Images           []string          `json:"Images"`
	ImageCacheSize   int               `json:"ImageCacheSize"`
	CreationTime     string            `json:"CreationTime"`
	ExpireDateTime   string            `json:"ExpireDateTime"`
	Events           []ImageCacheEvent `json:"Events"`
	Tags             []Tag             `json:"Tags"`
}

// ImageCacheEvent is one event of an image cache: the published API gives
// it the fields of a group's Event.
type ImageCacheEvent = Event

// CreateImageCache starts building an image cache. Retries inside the
// client reuse the request's ClientToken, so a lost answer never creates a
// second cache.
func (c *Client) CreateImageCache(ctx context.Context, req *CreateImageCacheRequest) (*CreateImageCacheResponse, error) {
	out := &CreateImageCacheResponse{}
	if err := c.call(ctx, "CreateImageCache", encodeParams(req), out); err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeImageCaches returns one page of image caches.
func (c *Client) DescribeImageCaches(ctx context.Context, req *DescribeImageCachesRequest) (*DescribeImageCachesResponse, error) {
	out := &DescribeImageCachesResponse{}
	if err := c.call(ctx, "DescribeImageCaches", encodeParams(req), out); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteImageCache deletes an image cache. A cache that is already gone
// returns an error of ClassNotFound, which callers treat as done.
func (c *Client) DeleteImageCache(ctx context.Context, id string) error {
	return c.call(ctx, "DeleteImageCache", map[string]string{"ImageCacheId": id}, nil)
}
