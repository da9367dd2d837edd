//! What the launcher leaves behind: a stack's files are its owner's only (the
//! workerd config holds the signing key), and the database it made is gone
//! once the stack stops.

use std::os::unix::fs::PermissionsExt as _;

use rushgate_system_tests::stack;

#[tokio::test]
async fn a_stack_keeps_its_key_private_and_drops_its_database() {
    let stack = stack().await;
    let described = stack.describe();
    let dir = std::path::PathBuf::from(described["dir"].as_str().unwrap());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let config = dir.join("edge/workerd.capnp");
    assert_eq!(mode(&config), 0o600, "{}", config.display());
    let url = described["database_url"].as_str().unwrap().to_owned();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let base = url.trim_end_matches(&name).trim_end_matches('/').to_owned();
    let exists = |name: String, base: String| async move {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&format!("{base}/postgres"))
            .await
            .unwrap();
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        )
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap()
    };
    assert!(exists(name.clone(), base.clone()).await);
    drop(stack);
    assert!(
        !exists(name, base).await,
        "the stack's database outlived it"
    );
    assert!(!dir.exists());
}
