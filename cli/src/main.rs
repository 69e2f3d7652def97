//! `zkwiki`: not built yet (see the README's status table).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("the zkwiki CLI is not implemented yet: only the crypto core exists so far")
}
