//! The seen record: the highest keyring version and wiki state a client accepted for a wiki,
//! kept between sessions (the CLI in `DATA/wikis/<id>/seen.json`, the browser in local
//! storage, a clone in `.zkwiki/clone.json`) so that an older or forked view is caught later.
//!
//! One JSON form and one merge rule for every client:
//!
//! ```json
//! {"keyring": {"seq": 3, "hash": "<64 hex>"}, "state": {"seq": 42, "hash": "<64 hex>"}}
//! ```

use core_crypto::ids::Digest32;
use core_crypto::keyring::Seen;
use core_crypto::snapshot::SeenRecord;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Serialize, Deserialize)]
struct SeenJson {
    seq: u64,
    hash: String,
}

#[derive(Serialize, Deserialize, Default)]
struct RecordJson {
    #[serde(default)]
    keyring: Option<SeenJson>,
    #[serde(default)]
    state: Option<SeenJson>,
}

fn to_json(s: Option<Seen>) -> Option<SeenJson> {
    s.map(|s| SeenJson {
        seq: s.seq,
        hash: s.hash.to_hex(),
    })
}

fn from_json(j: Option<SeenJson>) -> Result<Option<Seen>> {
    j.map(|s| {
        Ok(Seen {
            seq: s.seq,
            hash: Digest32::from_hex(&s.hash)
                .map_err(|_| Error::input("a remembered wiki version holds a malformed hash"))?,
        })
    })
    .transpose()
}

/// Encodes a record as JSON.
pub fn encode(record: &SeenRecord) -> String {
    crate::wire::to_json(&RecordJson {
        keyring: to_json(record.keyring),
        state: to_json(record.state),
    })
}

/// Parses a record (empty or blank text is the empty record: nothing seen yet).
pub fn decode(json: &str) -> Result<SeenRecord> {
    if json.trim().is_empty() {
        return Ok(SeenRecord::default());
    }
    let r: RecordJson = serde_json::from_str(json).map_err(|_| {
        Error::input("the remembered wiki version on this device is unreadable").with_hint(
            "it is rebuilt at the next verified read; delete it if it was edited by hand",
        )
    })?;
    Ok(SeenRecord {
        keyring: from_json(r.keyring)?,
        state: from_json(r.state)?,
    })
}

/// The record to keep after accepting `new` with `stored` already remembered: per part, the
/// higher sequence; on the same sequence, `stored` (the first one accepted; a different one at
/// that sequence is a fork, which verification refuses before anything is stored).
pub fn merge(stored: &SeenRecord, new: &SeenRecord) -> SeenRecord {
    let pick = |stored: Option<Seen>, new: Option<Seen>| match (stored, new) {
        (Some(s), Some(n)) => Some(if n.seq > s.seq { n } else { s }),
        (s, n) => s.or(n),
    };
    SeenRecord {
        keyring: pick(stored.keyring, new.keyring),
        state: pick(stored.state, new.state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(seq: u64, b: u8) -> Option<Seen> {
        Some(Seen {
            seq,
            hash: Digest32([b; 32]),
        })
    }

    #[test]
    fn round_trip_and_merge() {
        let r = SeenRecord {
            keyring: seen(2, 7),
            state: None,
        };
        assert_eq!(decode(&encode(&r)).unwrap(), r);
        assert_eq!(decode("").unwrap(), SeenRecord::default());
        assert!(decode("{\"state\":{\"seq\":1,\"hash\":\"zz\"}}").is_err());
        assert!(decode("not json").is_err());

        let stored = SeenRecord {
            keyring: seen(2, 1),
            state: seen(5, 1),
        };
        let newer = SeenRecord {
            keyring: seen(2, 9),
            state: seen(6, 2),
        };
        let m = merge(&stored, &newer);
        assert_eq!(m.keyring, seen(2, 1), "a tie keeps what was stored");
        assert_eq!(m.state, seen(6, 2), "a higher sequence wins");
        assert_eq!(merge(&newer, &stored).state, seen(6, 2), "never moves back");
        assert_eq!(merge(&SeenRecord::default(), &stored), stored);
    }
}
