package eci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/credentials-go/credentials"
	"k8s.io/klog/v2"
)

// APIVersion is the ECI OpenAPI version this client speaks.
const APIVersion = "2018-08-08"

// Config selects the region, endpoint and credentials of a Client.
type Config struct {
	// RegionId is the region, e.g. cn-hangzhou. Required.
	RegionId string
	// Endpoint overrides the regional endpoint: a host[:port] (HTTPS) or a
	// URL such as http://127.0.0.1:8080 for the simulator. Empty means
	// eci.<RegionId>.aliyuncs.com over HTTPS.
	Endpoint string
	// Credential supplies the AccessKey; nil means DefaultCredential().
	Credential credentials.Credential
	// Timeout bounds one HTTP attempt (default 10s).
	Timeout time.Duration
	// MaxAttempts bounds attempts of a retryable call (default
	// DefaultMaxAttempts).
	MaxAttempts int
	// Backoff is the first retry delay, doubled per attempt (default 200ms).
	Backoff time.Duration
	// Concurrency bounds the calls in flight at once (default 16).
	Concurrency int
	// Limits overrides the client-side token bucket of an operation
	// (keyed by action, e.g. CreateContainerGroup); operations not listed
	// keep their ClientLimits(1). A Limit with PerSecond 0
	// turns the client-side limit of that operation off.
	Limits map[string]Limit
	// ThrottleBackoff is the first pause of an operation after the cloud
	// answers Throttling, doubled per further throttled answer up to
	// MaxThrottleBackoff and jittered (defaults 1s and 30s). Every caller
	// of the operation waits it out, not only the one refused.
	ThrottleBackoff    time.Duration
	MaxThrottleBackoff time.Duration
	// Metrics receive the client's calls, latencies, waits and retries;
	// nil means a private set nobody serves.
	Metrics *Metrics
	// Health, if set, sees the outcome of every attempt: whether the
	// cloud answers, accepts the AccessKey, and which actions the RAM
	// policy refuses.
	Health *Health
}

// Retry defaults of Config.
const (
	// DefaultMaxAttempts is how many times one call is sent at most.
	DefaultMaxAttempts = 4
	// DefaultBackoff is the first retry delay after a server error or a
	// lost response (jittered, doubled per attempt).
	DefaultBackoff = 200 * time.Millisecond
	// DefaultThrottleBackoff is the first pause after a Throttling answer.
	DefaultThrottleBackoff = time.Second
)

// Client calls the ECI OpenAPI through the SDK core. It is safe for
// concurrent use.
type Client struct {
	// sdks holds one SDK client per call in flight: sdk.Client rewrites
	// its shared HTTP timeout and dialer on every request, which races
	// when one client serves several goroutines.
	sdks        chan *sdk.Client
	region      string
	scheme      string
	domain      string
	timeout     time.Duration
	maxAttempts int
	backoff     time.Duration
	limiters    *limiterSet
	metrics     *Metrics
	health      *Health
	// undecoded remembers the answer fields already reported by
	// reportUndecoded.
	undecoded sync.Map
}

// NewClient builds a Client. It resolves no credentials yet: they are asked
// for on every request so that rotating STS tokens keep working.
func NewClient(cfg Config) (*Client, error) {
	if cfg.RegionId == "" {
		return nil, errors.New("eci client: RegionId is required")
	}
	scheme, domain, err := parseEndpoint(cfg.Endpoint, cfg.RegionId)
	if err != nil {
		return nil, err
	}
	cred := cfg.Credential
	if cred == nil {
		if cred, err = DefaultCredential(); err != nil {
			return nil, fmt.Errorf("eci client: credentials: %w", err)
		}
	}
	n := cfg.Concurrency
	if n <= 0 {
		n = 16
	}
	lims, err := limits(cfg.Limits)
	if err != nil {
		return nil, err
	}
	tb, tmax := cfg.ThrottleBackoff, cfg.MaxThrottleBackoff
	if tb <= 0 {
		tb = DefaultThrottleBackoff
	}
	if tmax <= 0 {
		tmax = defaultMaxThrottleBackoff
	}
	if tmax < tb {
		return nil, fmt.Errorf("eci client: MaxThrottleBackoff (%s) must not be below ThrottleBackoff (%s)", tmax, tb)
	}
	out := &Client{
		sdks: make(chan *sdk.Client, n), region: cfg.RegionId, scheme: scheme, domain: domain,
		timeout: cfg.Timeout, maxAttempts: cfg.MaxAttempts, backoff: cfg.Backoff,
		limiters: newLimiterSet(lims, tb, tmax), metrics: cfg.Metrics, health: cfg.Health,
	}
	if out.metrics == nil {
		out.metrics = NewMetrics(nil)
	}
	out.metrics.quotaShare.Set(1)
	for i := 0; i < n; i++ {
		sdkCfg := sdk.NewConfig()
		sdkCfg.Scheme = strings.ToUpper(scheme)
		sdkCfg.AutoRetry = false // we retry ourselves, classified and bounded
		c, err := sdk.NewClientWithOptions(cfg.RegionId, sdkCfg, credentialProvider{cred: cred})
		if err != nil {
			return nil, fmt.Errorf("eci client: %w", err)
		}
		out.sdks <- c
	}
	if out.timeout <= 0 {
		out.timeout = 10 * time.Second
	}
	if out.maxAttempts <= 0 {
		out.maxAttempts = DefaultMaxAttempts
	}
	if out.backoff <= 0 {
		out.backoff = DefaultBackoff
	}
	return out, nil
}

// parseEndpoint turns Config.Endpoint into the SDK's scheme and domain.
func parseEndpoint(endpoint, region string) (scheme, domain string, err error) {
	if endpoint == "" {
		return "https", "eci." + region + ".aliyuncs.com", nil
	}
	if !strings.Contains(endpoint, "://") {
		return "https", endpoint, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", "", fmt.Errorf("eci client: endpoint %q must be host[:port] or http(s)://host[:port]", endpoint)
	}
	return u.Scheme, u.Host, nil
}

// SetShare re-scales every operation's client-side bucket to share (0 to
// 1) of its configured Limit: rate and size times share. Shrinking takes
// effect at once, also for calls already waiting; growing adds no token,
// the buckets refill at the new rate. At share 0 limited operations wait
// until the share grows (or their context ends); operations without a
// limit are not affected. A new Client has share 1 and full buckets; a
// replica that shares the account's quota with others sets share 0 before
// its first call, so it starts with empty buckets and takes its part only
// once the others have given it up (package ownership decides the shares).
func (c *Client) SetShare(share float64) error {
	if math.IsNaN(share) || share < 0 || share > 1 {
		return fmt.Errorf("eci client: SetShare(%v): the share must be between 0 and 1", share)
	}
	c.limiters.setShare(share)
	c.metrics.quotaShare.Set(share)
	return nil
}

// Share returns the client's current share of its configured limits.
func (c *Client) Share() float64 {
	c.limiters.mu.Lock()
	defer c.limiters.mu.Unlock()
	return c.limiters.share
}

// Region returns the region the client is bound to.
func (c *Client) Region() string { return c.region }

// call sends one action with its parameters, retrying retryable failures,
// and decodes the JSON body into out. Each attempt first waits for the
// operation's token bucket (and for its cool-down after a Throttling
// answer), then is signed anew (fresh nonce and timestamp), as the cloud
// requires. Server errors and lost responses are retried after a jittered
// exponential delay; a throttled call waits out the operation's cool-down.
func (c *Client) call(ctx context.Context, action string, params map[string]string, out any) error {
	var lastErr *Error
	lim := c.limiters.get(action)
	delay := c.backoff
	for attempt := 1; ; attempt++ {
		waited, werr := lim.wait(ctx)
		c.metrics.limiterWait.WithLabelValues(action).Observe(waited.Seconds())
		if werr == nil {
			werr = ctx.Err()
		}
		if werr != nil {
			if lastErr != nil {
				return lastErr
			}
			return &Error{Action: action, Message: werr.Error(), Class: ClassTransient, Err: werr}
		}
		sent := time.Now()
		body, err := c.once(ctx, action, params)
		c.health.observe(action, err)
		if err == nil {
			lim.succeeded()
			c.metrics.apiCalls.WithLabelValues(action, "OK").Inc()
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(body, out); err != nil {
				return &Error{Action: action, Message: "decode response: " + err.Error(), Class: ClassTransient, Err: err}
			}
			return nil
		}
		lastErr = err
		outcome := err.Code
		if outcome == "" {
			outcome = "NoResponse"
		}
		c.metrics.apiCalls.WithLabelValues(action, outcome).Inc()
		var pause time.Duration
		if err.Class == ClassThrottled {
			// The operation's pause is waited out by lim.wait before the
			// next attempt of any caller, this one included.
			pause = lim.throttled(sent, c.limiters.base, c.limiters.ceil)
		}
		// A stock-out is retried by the caller across zones, not here.
		if !err.Class.RetryInClient() || attempt >= c.maxAttempts {
			return lastErr
		}
		c.metrics.apiRetries.WithLabelValues(action, err.Class.String()).Inc()
		d := pause
		if err.Class == ClassThrottled {
			klog.V(2).InfoS("ECI call throttled; pausing the operation", "action", action, "attempt", attempt, "code", err.Code, "pause", pause)
		} else {
			d = jitter(delay)
			delay *= 2
			klog.V(2).InfoS("retrying ECI call", "action", action, "attempt", attempt, "class", err.Class, "code", err.Code, "delay", d)
		}
		select {
		case <-ctx.Done():
			return lastErr
		case <-time.After(d):
		}
	}
}

func (c *Client) once(ctx context.Context, action string, params map[string]string) ([]byte, *Error) {
	var sc *sdk.Client
	select {
	case sc = <-c.sdks:
		defer func() { c.sdks <- sc }()
	case <-ctx.Done():
		return nil, &Error{Action: action, Message: ctx.Err().Error(), Class: ClassTransient, Err: ctx.Err()}
	}
	req := requests.NewCommonRequest()
	req.Method = "POST"
	req.Scheme = c.scheme
	req.Domain = c.domain
	req.Product = "Eci"
	req.Version = APIVersion
	req.ApiName = action
	req.SetReadTimeout(c.timeout)
	req.SetConnectTimeout(c.timeout)
	req.QueryParams["RegionId"] = c.region
	for k, v := range params {
		req.QueryParams[k] = v
	}
	start := time.Now()
	resp, err := sc.ProcessCommonRequest(req)
	c.metrics.apiLatency.WithLabelValues(action).Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, toError(action, err)
	}
	if !resp.IsSuccess() {
		return nil, &Error{Action: action, HTTPStatus: resp.GetHttpStatus(), Message: resp.GetHttpContentString(),
			Class: classify("", resp.GetHttpStatus())}
	}
	return resp.GetHttpContentBytes(), nil
}
