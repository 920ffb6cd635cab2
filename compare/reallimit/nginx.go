package reallimit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// NginxPath is where Debian's nginx package installs the server.
const NginxPath = "/usr/sbin/nginx"

// The two nginx locations: chat completions under each prefix answer 200
// when limit_req admits the request and 429 when it refuses it.
const (
	NginxBurstPrefix   = "/burst/v1"   // NginxBurst: rate 10/s, burst=10 nodelay
	NginxNoBurstPrefix = "/noburst/v1" // NginxNoBurst: rate 10/s, no burst
)

// The limits nginx is configured with, keyed on the Authorization header.
// The configuration is written from these values, so the oracle and the
// server cannot disagree.
var (
	NginxBurst   = LeakyBucket{PerSecond: 10, Burst: 10}
	NginxNoBurst = LeakyBucket{PerSecond: 10}
)

// Completion is the body every server answers an admitted request with: an
// OpenAI-shaped chat completion, so that clients and presets that read
// answers see a plausible one.
const Completion = `{"id":"chatcmpl-loopback","object":"chat.completion","created":0,"model":"loopback",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`

// nginxConf is the configuration [StartNginx] writes. Its one subtlety:
// the answer is not a `return` in the limited location. `return` belongs
// to the rewrite phase, which nginx runs before limit_req's preaccess
// phase, so a location that answers with `return` is never limited at
// all. try_files runs after preaccess; its fallback, a named location,
// answers. The root it looks in does not exist, so the lookup fails with
// ENOENT, quietly, whatever user the workers run as (a root master runs
// them as nobody, who could not search the test's private directory and
// would log every lookup).
const nginxConf = `worker_processes 1;
daemon off;
master_process on;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path {{dir}}/tmp/body;
	proxy_temp_path {{dir}}/tmp/proxy;
	fastcgi_temp_path {{dir}}/tmp/fastcgi;
	uwsgi_temp_path {{dir}}/tmp/uwsgi;
	scgi_temp_path {{dir}}/tmp/scgi;
	keepalive_requests 1000000;
	keepalive_timeout 60s;

	limit_req_zone $http_authorization zone=burst:1m rate={{burst.rate}}r/s;
	limit_req_zone $http_authorization zone=noburst:1m rate={{noburst.rate}}r/s;
	limit_req_status 429;
	limit_req_log_level info;

	server {
		listen 127.0.0.1:{{port}};
		root /nonexistent/steady-reallimit;
		default_type application/json;

		location = /ready { return 204; }
		location = {{burst.prefix}}/chat/completions {
			limit_req zone=burst burst={{burst.burst}} nodelay;
			try_files /.none @completion;
		}
		location = {{noburst.prefix}}/chat/completions {
			limit_req zone=noburst;
			try_files /.none @completion;
		}
		location @completion { return 200 '{{completion}}'; }
		location / { return 404; }
	}
}
`

// StartNginx starts nginx (bin, or [NginxPath] when empty) as a child
// process with a configuration written into dir, which also holds its pid
// file, logs and temporary files, on a free loopback port. It returns once
// nginx answers. An error for which [IsNotInstalled] holds means there is
// no nginx at bin.
func StartNginx(bin, dir string) (*Server, error) {
	if bin == "" {
		bin = NginxPath
	}
	if _, err := exec.LookPath(bin); err != nil {
		return nil, fmt.Errorf("nginx: %w: %v", errNotFound, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	var err error
	for range 3 { // the free port may be taken before nginx binds it
		var s *Server
		if s, err = startNginx(bin, dir); err == nil {
			return s, nil
		}
	}
	return nil, err
}

func startNginx(bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := strings.NewReplacer(
		"{{dir}}", dir,
		"{{port}}", fmt.Sprint(port),
		"{{burst.prefix}}", NginxBurstPrefix,
		"{{burst.rate}}", fmt.Sprint(NginxBurst.PerSecond),
		"{{burst.burst}}", fmt.Sprint(NginxBurst.Burst),
		"{{noburst.prefix}}", NginxNoBurstPrefix,
		"{{noburst.rate}}", fmt.Sprint(NginxNoBurst.PerSecond),
		"{{completion}}", Completion,
	).Replace(nginxConf)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	errorLog := filepath.Join(dir, "error.log")
	// -e: the error log before the configuration is read, which would
	// otherwise go to /var/log/nginx, where a test may not write.
	cmd := exec.Command(bin, "-p", dir, "-e", errorLog, "-c", confPath)
	s := &Server{URL: loopbackURL(port), log: &lockedBuffer{}}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	s.files = func() string {
		b, _ := os.ReadFile(errorLog)
		return string(b)
	}
	if err := s.start(cmd); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	if err := s.waitReady(s.URL+"/ready", 204); err != nil {
		s.Close()
		return nil, fmt.Errorf("nginx: %w", err)
	}
	return s, nil
}
