//! The integration tests, one binary: each module is one area (the file names say which),
//! all sharing `support` (process guards for lookout and its peers, the verifying mocks,
//! an HTTP client, the exposition parser). One binary links once and runs `support`'s
//! own tests once.

mod support;

mod channels;
mod cli;
mod console;
mod demo;
mod demo_prometheus;
mod e2e_pipeline;
mod email;
mod escalation;
mod exposition_sql;
mod fuzz_props;
mod host_node_exporter;
mod host_prometheus;
mod host_rootfs;
mod host_textfile;
mod http_hardening;
mod http_tls;
mod kit_alertmanager;
mod kit_deploy;
mod kit_docs;
mod kit_grafana;
mod kit_rules;
mod metrics_promtool;
mod mocks_conformance;
mod module_graph;
mod outbox_shared;
mod outbox_status;
mod packs;
mod relay;
mod relay_alertmanager;
mod relay_ha;
mod relay_memory;
mod relay_targets;
mod render_examples;
mod sdk_verifies_mocks;
mod sql_independence;
mod sql_mariadb;
mod sql_outage;
mod sql_postgres;
mod sql_sqlite;
mod sql_tls;
