//! `marketplace seed --load-users`: verified accounts made once and reused,
//! each run a new session with a long-lived access token the API accepts.

use chrono::TimeDelta;
use gateway::seed::{load_users, write_load_tokens, LOAD_PASSWORD};

use crate::helpers::TestApp;

backend_tests! {
    load_users_get_long_lived_sessions_and_are_reused,
}

async fn load_users_get_long_lived_sessions_and_are_reused(app: TestApp) {
    let first = load_users(&app.state, 3, TimeDelta::hours(2))
        .await
        .unwrap();
    assert_eq!((first.created, first.reused), (3, 0));
    let names: Vec<&str> = first.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["load00001", "load00002", "load00003"]);
    for user in &first.users {
        let me = app.me(&user.access_token).await.expect(200);
        assert_eq!(me["username"], user.username.as_str());
        assert_eq!(me["id"], user.id.to_string());
        assert_eq!(me["email_verified"], true);
    }
    // The tokens outlive the usual 15 minutes.
    app.clock.advance(TimeDelta::minutes(90));
    app.me(&first.users[0].access_token).await.expect(200);

    // Again with one more: the three are reused, each with a new session.
    let second = load_users(&app.state, 4, TimeDelta::hours(2))
        .await
        .unwrap();
    assert_eq!((second.created, second.reused), (1, 3));
    for (old, new) in first.users.iter().zip(&second.users) {
        assert_eq!(old.id, new.id);
        assert_ne!(old.access_token, new.access_token);
        app.me(&old.access_token).await.expect(200);
        app.me(&new.access_token).await.expect(200);
    }
    // The shared password hash is a real one.
    app.login_ok("load00004", LOAD_PASSWORD).await;

    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("tokens.txt");
    write_load_tokens(&path, &second.users).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[3],
        [
            second.users[3].id.to_string().as_str(),
            "load00004",
            second.users[3].access_token.as_str()
        ]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the token file is private");
    }
}
