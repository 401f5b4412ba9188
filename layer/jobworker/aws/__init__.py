"""AWS glue: settings from the environment, the per-process engine, Secrets Manager, the kick
(an async invoke of the poller), and Powertools metrics and tracing."""
