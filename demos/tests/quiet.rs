//! The hello demo raises no warning: sleeping tasks are the loop working as meant.

use looptrace_collector::embedded::Embedded;
use looptrace_collector::hub::HubConfig;

#[test]
fn hello_raises_no_warning() {
    let (sink, handle) =
        Embedded::serve("127.0.0.1:0".parse().unwrap(), HubConfig::default()).unwrap();
    let rt = looptrace::Builder::new_multi_thread()
        .worker_threads(2)
        .from_env(false)
        .sink(sink)
        .build()
        .unwrap();
    rt.block_on(demos::hello::run());
    rt.shutdown();
    let hub = handle.hub();
    let id = hub.session_ids()[0];
    let (warnings, tasks) = hub
        .with_session(id, |s| (s.model.warnings.clone(), s.model.tasks.len()))
        .unwrap();
    assert_eq!(tasks, 3);
    assert!(warnings.is_empty(), "{warnings:?}");
}
