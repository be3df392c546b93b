//! Prints the embedded default store in the policy file format (keys redacted unless
//! `--with-keys`).
fn main() {
    let keys = if std::env::args().any(|a| a == "--with-keys") {
        ipsec_policy::ExportKeys::Include
    } else {
        ipsec_policy::ExportKeys::Redact
    };
    match ipsec_policy::file::export(&ipsec_policy::defaults::default_store(), keys) {
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
