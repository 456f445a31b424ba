//! The token file `marketplace seed --load-users N --tokens-out FILE`
//! writes: one account per line, `<user_id> <username> <access_token>`.

use std::path::Path;

use anyhow::Context as _;

/// One line of the token file: an account and an access token for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub user_id: String,
    pub username: String,
    pub token: String,
}

/// Reads the file and keeps its first `needed` accounts; fails when it has
/// fewer (a token is never used for two sessions).
pub fn read(path: &Path, needed: usize) -> anyhow::Result<Vec<Account>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    let mut accounts =
        parse(&text).with_context(|| format!("reading the token file {}", path.display()))?;
    anyhow::ensure!(
        accounts.len() >= needed,
        "{} has {} tokens but {needed} sessions need one each (tokens are not reused); \
         make more with `marketplace seed --load-users {needed} --tokens-out {}`",
        path.display(),
        accounts.len(),
        path.display()
    );
    accounts.truncate(needed);
    Ok(accounts)
}

/// Reads every account of the file; fails when it has none.
pub fn read_all(path: &Path) -> anyhow::Result<Vec<Account>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    let accounts =
        parse(&text).with_context(|| format!("reading the token file {}", path.display()))?;
    anyhow::ensure!(
        !accounts.is_empty(),
        "{} has no tokens; make some with `marketplace seed --load-users N --tokens-out {}`",
        path.display(),
        path.display()
    );
    Ok(accounts)
}

/// Parses the lines; blank lines and `#` comments are skipped.
pub fn parse(text: &str) -> anyhow::Result<Vec<Account>> {
    let mut accounts = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [user_id, username, token] = fields[..] else {
            anyhow::bail!(
                "line {}: expected `<user_id> <username> <access_token>`, found {} fields",
                number + 1,
                fields.len()
            );
        };
        anyhow::ensure!(
            is_uuid(user_id),
            "line {}: `{user_id}` is not a user id (a UUID)",
            number + 1
        );
        anyhow::ensure!(
            token.split('.').count() == 3,
            "line {}: the access token is not a JWT",
            number + 1
        );
        accounts.push(Account {
            user_id: user_id.to_string(),
            username: username.to_string(),
            token: token.to_string(),
        });
    }
    Ok(accounts)
}

pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "0192f0c4-1b2a-7c3d-8e4f-a1b2c3d4e5f6 load00001 aaa.bbb.ccc";

    #[test]
    fn lines_are_accounts() {
        let text = format!(
            "# made by seed\n{LINE}\n\n{}\n",
            LINE.replace("00001", "00002")
        );
        let accounts = parse(&text).unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[0].user_id, "0192f0c4-1b2a-7c3d-8e4f-a1b2c3d4e5f6");
        assert_eq!(accounts[1].username, "load00002");
        assert_eq!(accounts[1].token, "aaa.bbb.ccc");
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        let error = parse(&format!("{LINE}\nload00002 aaa.bbb.ccc\n")).unwrap_err();
        assert!(error.to_string().starts_with("line 2:"), "{error}");
        assert!(parse("not-a-uuid load00001 a.b.c").is_err());
        assert!(parse(&LINE.replace("aaa.bbb.ccc", "token")).is_err());
        assert!(parse(&format!("{LINE} extra")).is_err());
    }

    #[test]
    fn too_few_tokens_is_an_error_not_a_wrap_around() {
        let dir = std::env::temp_dir().join(format!("loadgen-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens.txt");
        std::fs::write(&path, format!("{LINE}\n{LINE}\n")).unwrap();
        assert_eq!(read(&path, 1).unwrap().len(), 1);
        assert_eq!(read(&path, 2).unwrap().len(), 2);
        let error = read(&path, 3).unwrap_err().to_string();
        assert!(error.contains("has 2 tokens but 3 sessions"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
