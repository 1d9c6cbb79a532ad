package demo

import "strings"

// cloudArgs turns CloudOptions into larder-cloud's command line and environment.
// Secrets go by environment, never by flag (flags show in ps).
func cloudArgs(o CloudOptions) (args, env []string, err error) {
	args = []string{"-data", o.DataDir, "-http", o.HTTP, "-log-level", o.LogLevel}
	if o.Broker != "" {
		args = append(args, "-broker", o.Broker)
		if len(o.Sites) > 0 {
			args = append(args, "-sites", strings.Join(o.Sites, ","))
		}
	} else {
		args = append(args, "-mqtt-listen", o.MQTTListen)
	}
	if o.AdminKey != "" {
		env = append(env, "LARDER_CLOUD_ADMIN_KEY="+o.AdminKey)
	}
	args = append(args, o.Extra...)
	return args, env, nil
}
