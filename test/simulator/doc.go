// Package simulator is an in-memory Alibaba Cloud Elastic Container
// Instance (ECI) region that speaks the ECI OpenAPI (RPC style, product Eci,
// version 2018-08-08, JSON) well enough that the unmodified
// alibaba-cloud-sdk-go core client (sdk.Client + requests.CommonRequest)
// talks to it. Nothing here reaches the real cloud: the simulator is the
// cloud for demos and integration tests.
//
// # Serving
//
//	sim, err := simulator.New(simulator.DefaultConfig())
//	srv := httptest.NewServer(sim.Handler())
//	defer srv.Close(); defer sim.Close()
//
// Point the SDK at it with req.Scheme = "http" and req.Domain = host:port.
// Handler serves the OpenAPI at "/" (GET or POST, parameters in the query
// and/or a form body, signature v1 verified against Config.AccessKeys), an
// unsigned JSON admin API under "/admin/" and exec streams under
// "/exec-ws/" and "/exec/".
//
// # Operations
//
// CreateContainerGroup, DescribeContainerGroups, DescribeContainerGroupStatus,
// DeleteContainerGroup, RestartContainerGroup, UpdateContainerGroup,
// DescribeContainerLog, ExecContainerCommand, DescribeContainerGroupMetric,
// DescribeMultiContainerGroupMetric, CreateImageCache, DescribeImageCaches
// and DeleteImageCache, with the parameter and field names of the public
// reference. Only published parameters are accepted: a name that is not in
// the action's table of the vendor's API metadata (package
// test/simulator/published) is refused with UnknownParameter, HTTP 400,
// naming it and the action, where the real cloud might ignore it silently.
// Answers have the published shapes and JSON types (e.g.
// DescribeContainerGroupStatus's Data[].Annotations is a JSON-encoded
// string), and DescribeContainerGroups returns Events only with
// WithEvent=true. Errors use the Code* constants; ClientToken makes the mutating
// operations idempotent; per-operation token buckets enforce the published
// quotas of eci.PublishedQuotas (scaled by Config.QuotaScale).
//
// # Time and lifecycle
//
// Nothing runs in the background: each call advances the simulated world to
// Config.Clock's "now" (use a FakeClock in tests). A new group is Pending for
// Config.StartDelay, then its init containers run one after another, then
// its containers start and the group is Running. Containers follow the
// RestartPolicy (Always: restart any exit; OnFailure: restart non-zero
// exits; Never: no restarts) with kubelet-style back-off starting at
// Config.RestartBackoff. When no container will run again the group becomes
// Succeeded (all exit codes 0) or Failed. Terminal groups stay visible for
// Config.Retention. Every transition is stamped with the simulated instant
// at which it happened.
//
// # Container command convention
//
// Containers do not run real processes. Command+Args decide what a
// container does:
//
//   - sh -c SCRIPT (also /bin/sh, bash, /bin/bash, ash, dash, zsh, and flag
//     clusters such as -ec) runs SCRIPT in the tiny language below.
//   - A bare builtin such as ["sleep", "5"] or ["echo", "hi"] runs as that
//     single statement.
//   - Any other command, or none (the image entrypoint), runs forever, like
//     nginx.
//   - An image whose name contains "pull-fail" never starts: the container
//     is Waiting with reason ErrImagePull, then ImagePullBackOff, Warning
//     events are recorded and the group stays Pending.
//
// The script language has statements separated by ';', newlines, '&&' and
// '||' (with shell short-circuit semantics; '|' and '&' just sequence):
//
//	echo TEXT       print TEXT as one log line (quotes are removed; -n/-e ignored)
//	printf TEXT     like echo, with \n and \t escapes
//	sleep N         wait N seconds (fractions and s/m/h/d suffixes allowed;
//	                "sleep infinity" waits forever)
//	exit [N]        exit with N (default: the last status)
//	true, :         status 0
//	false           status 1
//	while C; do BODY; done   repeat BODY while C succeeds ("until" too)
//	hostname, pwd, whoami, date, env, printenv [VAR]   print what you expect
//	cat FILE...     print files of the ConfigFileVolumes mounted into the
//	                container (MountPath + ConfigFileToPath.Path, or the
//	                SubPath selection); a missing file prints
//	                "cat: FILE: No such file or directory", status 1
//	stty size       the TTY exec's terminal size "ROWS COLS"
//	exec CMD        runs CMD
//	set, export, cd, trap, ...   accepted and ignored
//
// $VAR and ${VAR} expand from the container's environment (EnvironmentVars,
// FieldRef values, HOSTNAME, PATH); Kubernetes $(VAR) references in
// Command/Args are expanded first. A script that runs off its end exits
// with the last status (0 after echo or sleep). An unknown command inside a
// container script is treated as a long-running server and blocks forever;
// inside exec it prints "sim: CMD: command not found" and has status 127.
// A loop that never sleeps is cut off after 100000 steps and then counts as
// running forever. The newest 10000 lines of each run are kept as its log.
//
// DescribeContainerLog returns the current run's lines (or the previous
// run's while a container waits to restart), with Timestamps=true prefixing
// each line with its RFC 3339 nano timestamp. LastTime=true (a boolean, as
// in the public reference) returns the previous run's lines.
//
// ExecContainerCommand runs the same language in the container's
// environment. With Sync=true the command runs immediately, sleeps take no
// time and SyncResponse holds its output (e.g. "echo hi" gives "hi\n").
// Otherwise the response carries WebSocketUri ws://HOST/exec-ws/TOKEN and
// HttpUrl http://HOST/exec/TOKEN, single-use and valid for 30 s of
// simulated time. The WebSocket streams output as binary messages in real
// time, treats client messages as stdin (a bare shell such as ["/bin/sh"]
// reads command lines; with TTY it echoes input and prints a "# " prompt)
// and finishes with a close frame (1000) whose reason is "exit code N".
// Client text messages {"type":"resize","width":W,"height":H} and
// {"type":"eof"} resize the terminal and close stdin; a client close
// frame or a dropped connection is a hang-up.
// HttpUrl returns the whole output as text/plain with an X-Exit-Code header.
//
// # Admin API
//
//	GET    /admin/state                  zones (stock, used, free, IPs), groups, faults
//	GET    /admin/groups[/{id}]          groups in DescribeContainerGroups shape
//	POST   /admin/groups/{id}/fail       host failure: Failed (or ?status=Expired)
//	PUT    /admin/zones/{zoneId}/stock   body {"cpu":N,"memory":N}
//	GET    /admin/faults                 active fault rules
//	POST   /admin/faults                 body Fault, e.g. {"action":"CreateContainerGroup",
//	                                     "errorRate":0.5,"code":"InternalError","httpStatus":500,"latencyMs":200}
//	DELETE /admin/faults[/{action}]      remove all rules (or one)
//	GET    /admin/policies               RAM policy of every AccessKey
//	PUT    /admin/policies/{accessKeyId} body {"preset":"documented"|"full"} or
//	                                     {"actions":["CreateContainerGroup",...]}
//	GET    /admin/calls                  {"calls":{action:{outcome:count}}}
//	POST   /admin/reset-calls            clear counters and the request log
//	GET    /admin/requests[?action=X]    recent requests with their parameters
//	POST   /admin/reset                  forget everything, restore stock
//
// The Go API mirrors it: State, Groups, Group, FailGroup, SetStock,
// InjectFault, RemoveFault, ClearFaults, Faults, Calls, ResetCalls,
// Requests and Reset.
package simulator
