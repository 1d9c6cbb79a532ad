package demo

// cloudArgs turns CloudOptions into larder-cloud's command line and environment.
// Secrets go by environment, never by flag (flags show in ps).
func cloudArgs(o CloudOptions) (args, env []string) {
	args = []string{"-data", o.DataDir, "-http", o.HTTP, "-metrics", o.Metrics, "-log-level", o.LogLevel}
	if o.Broker != "" {
		args = append(args, "-mqtt", o.Broker)
	} else {
		args = append(args, "-mqtt-listen", o.MQTTListen)
	}
	if o.AdminKey != "" {
		env = append(env, "LARDER_CLOUD_ADMIN_KEY="+o.AdminKey)
	}
	if o.SweepEvery > 0 {
		env = append(env, "LARDER_CLOUD_SWEEP_EVERY="+o.SweepEvery.String())
	}
	// Sites (confining a cloud on a shared broker to its sites' topics) has no setting
	// yet: a cloud on the shared Mosquitto also hears other sites' edges and refuses them
	// as unknown, which is harmless.
	if o.SMSURL != "" {
		env = append(env, "LARDER_CLOUD_SMS_URL="+o.SMSURL)
	}
	if o.Hold > 0 {
		env = append(env, "LARDER_CLOUD_HOLD="+o.Hold.String())
	}
	args = append(args, o.Extra...)
	return args, env
}
