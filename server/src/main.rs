//! `zkwiki-server`: not built yet (see the README's status table).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("zkwiki-server is not implemented yet: only the crypto core exists so far")
}
