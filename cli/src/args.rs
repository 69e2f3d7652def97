//! Raw command-line arguments (clap derive). Every flag is defined once, here; [`crate::run`]
//! resolves them with the configuration into a [`crate::context::Ctx`] before any command runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failure (I/O, bad input, server error)
  2  bad command-line usage
  3  not logged in, wrong passphrase, or no access to this wiki
  4  verification failed: tampering, rollback or fork; do not trust the server
  5  a concurrent change could not be merged (your text was saved to a file)
  6  no such page, wiki or file
  7  the server could not be reached

Environment:
  ZKWIKI_PASSPHRASE       passphrase (for scripts; prefer --passphrase-file)
  ZKWIKI_RECOVERY_KEY     recovery key for `login --recovery-key`
  ZKWIKI_URL              server URL (like --server)
  ZKWIKI_PROFILE          profile to use (like --profile)
  ZKWIKI_CONFIG_DIR       configuration folder (default: XDG config dir)
  ZKWIKI_DATA_DIR         data folder: sealed identities, sessions, seen records, mirrors
  EDITOR                  editor for `zkwiki edit`";

/// zkwiki: an end-to-end encrypted, git-backed markdown wiki.
///
/// The server stores only ciphertext; this client encrypts, signs and verifies everything.
#[derive(Debug, Parser)]
#[command(name = "zkwiki", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print machine-readable JSON on standard output
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars or notes
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Server URL (default: the current profile's)
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "ZKWIKI_URL",
        hide_env_values = true
    )]
    pub server: Option<String>,
    /// Profile to use (an account on a server, `user@host`; see `zkwiki auth list`)
    #[arg(
        long,
        global = true,
        value_name = "PROFILE",
        env = "ZKWIKI_PROFILE",
        hide_env_values = true
    )]
    pub profile: Option<String>,
    /// Wiki to use: a name from `zkwiki wiki list` or a wiki id
    #[arg(
        long,
        short,
        global = true,
        value_name = "WIKI",
        env = "ZKWIKI_WIKI",
        hide_env_values = true
    )]
    pub wiki: Option<String>,
    /// Read the passphrase from the first line of FILE instead of prompting
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "ZKWIKI_PASSPHRASE_FILE",
        hide_env_values = true
    )]
    pub passphrase_file: Option<PathBuf>,
    /// Use an exported key file instead of your sealed identity (no passphrase needed)
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "ZKWIKI_KEY_FILE",
        hide_env_values = true
    )]
    pub key_file: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account on a server (prints a recovery key once)
    Register(RegisterArgs),
    /// Log in to a server (with your passphrase, an AWS KMS key, or your recovery key)
    Login(LoginArgs),
    /// End the session (the sealed identity stays for offline decryption unless --forget)
    Logout(LogoutArgs),
    /// Show who you are logged in as, and your key fingerprint
    Whoami,
    /// Change your passphrase, or protect your key with an AWS KMS key instead
    Passwd(PasswdArgs),
    /// Make a new recovery key (the old one stops working)
    RecoveryKey(RecoveryKeyArgs),
    /// Create, list and delete wikis
    #[command(subcommand)]
    Wiki(WikiCommand),
    /// List pages
    Ls(LsArgs),
    /// Print a page
    Cat(CatArgs),
    /// Write a page from a file or standard input
    Put(PutArgs),
    /// Edit a page in $EDITOR; concurrent changes are merged or saved, never lost
    Edit(EditArgs),
    /// Rename a page (it keeps its history)
    Mv(MvArgs),
    /// Delete a page (it stays in history)
    Rm(RmArgs),
    /// Show the history of the wiki or of one page (following renames)
    Log(LogArgs),
    /// Search pages (on this machine, in the encrypted index)
    Search(SearchArgs),
    /// git clone a wiki's ciphertext and decrypt it into a plaintext folder
    Clone(CloneArgs),
    /// Verify and decrypt an encrypted clone offline
    Decrypt(DecryptArgs),
    /// Update a folder made by `zkwiki clone`
    Pull(PullArgs),
    /// Import a folder or git repository of markdown (e.g. an Otterwiki repository)
    Import(ImportArgs),
    /// Export every page into a folder, in the wiki's layout
    Export(ExportArgs),
    /// Export or inspect your key
    #[command(subcommand)]
    Key(KeyCommand),
    /// git textconv driver: print an encrypted file of a clone as text (set up by `clone`)
    #[command(hide = true)]
    Textconv(TextconvArgs),
    /// git credential helper: hands git the session token (set up by `clone`)
    #[command(hide = true)]
    Credential(CredentialArgs),
    /// Add, remove and list the people who share a wiki
    #[command(subcommand)]
    Member(MemberCommand),
    /// Give an agent its own key (read or write, whole wiki or one folder), list, revoke
    #[command(subcommand)]
    Agent(AgentCommand),
    /// The wiki's witnesses: services that co-sign its head so new devices cannot be shown an old
    /// or forked one (list, add, remove, policy)
    #[command(subcommand)]
    Witness(WitnessCommand),
    /// Show the wiki's head and keyring with their safety numbers, and what its witnesses say
    #[command(
        after_help = "Compare the safety numbers with another member over a channel you trust: the\nsame sequence with the same number means you both see the same wiki.\n\nExamples:\n  zkwiki status\n  zkwiki -w lab status --json"
    )]
    Status,
    /// Start a new key epoch for everyone (optionally re-encrypting every page)
    Rotate(RotateArgs),
    /// Re-encrypt pages written under older key epochs (resumable)
    Reencrypt(ReencryptArgs),
    /// Serve a wiki to an AI agent over MCP (stdio or --http), decrypting on this machine
    Mcp(McpArgs),
    /// Unlock your keys once for a while (like ssh-agent): later commands ask no passphrase
    Unlock(UnlockArgs),
    /// Forget the unlocked keys (stop the unlock agent)
    Lock,
    /// Your profiles (one per account and server): list them, switch between them
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(
        after_help = "Examples:\n  zkwiki completions bash > ~/.local/share/bash-completion/completions/zkwiki\n  zkwiki completions zsh > \"${fpath[1]}/_zkwiki\"\n  zkwiki completions fish > ~/.config/fish/completions/zkwiki.fish"
    )]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

/// The hidden test switch for the cost of a new passphrase's key derivation.
#[derive(Debug, Args, Clone, Copy)]
pub struct TestKdf {
    /// Tests only: Argon2id at the client's minimum cost instead of the default
    #[arg(
        long,
        hide = true,
        env = "ZKWIKI_TEST_KDF_FLOOR",
        hide_env_values = true,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub kdf_floor: bool,
}

/// `register`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki --server https://wiki.example register alice\n  zkwiki register alice --recovery-key-out ~/alice-recovery.txt\n  zkwiki register svc-bot --kms-key alias/zkwiki"
)]
pub struct RegisterArgs {
    /// Your user name (a-z, 0-9, '.', '_', '-')
    pub user: String,
    /// Write the recovery key to FILE (mode 0600) instead of printing it
    #[arg(long, value_name = "FILE")]
    pub recovery_key_out: Option<PathBuf>,
    /// Protect your key with this AWS KMS key (id, alias or ARN) instead of a passphrase:
    /// whoever may call kms:Decrypt on it (with your user name as context) can log in as you
    /// (see docs/kms.md)
    #[arg(long, value_name = "ARN")]
    pub kms_key: Option<String>,
    /// (Hidden, for tests.)
    #[command(flatten)]
    pub test_kdf: TestKdf,
}

/// `login`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki --server https://wiki.example login alice\n  zkwiki login alice --recovery-key\n  zkwiki login svc-bot --kms-key alias/zkwiki"
)]
pub struct LoginArgs {
    /// Your user name (default: the last one used)
    pub user: Option<String>,
    /// Log in with your recovery key, then choose a new passphrase
    #[arg(long)]
    pub recovery_key: bool,
    /// Read the recovery key from FILE (implies --recovery-key)
    #[arg(long, value_name = "FILE")]
    pub recovery_key_file: Option<PathBuf>,
    /// Log in with the AWS KMS key your account was registered with (no passphrase); with
    /// --recovery-key, protect the account with this KMS key instead of a new passphrase
    #[arg(long, value_name = "ARN")]
    pub kms_key: Option<String>,
    /// (Hidden, for tests.)
    #[command(flatten)]
    pub test_kdf: TestKdf,
}

/// `passwd`.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Protect your key with this AWS KMS key (id, alias or ARN) instead of a new passphrase
    #[arg(long, value_name = "ARN")]
    pub kms_key: Option<String>,
    /// Read the new passphrase from the first line of FILE (or set ZKWIKI_NEW_PASSPHRASE)
    #[arg(long, value_name = "FILE")]
    pub new_passphrase_file: Option<PathBuf>,
    /// (Hidden, for tests.)
    #[command(flatten)]
    pub test_kdf: TestKdf,
}

/// `recovery-key`.
#[derive(Debug, Args)]
pub struct RecoveryKeyArgs {
    /// Write the new recovery key to FILE (mode 0600) instead of printing it
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Also delete the sealed identity kept for offline decryption
    #[arg(long)]
    pub forget: bool,
}

/// `wiki …`.
#[derive(Debug, Subcommand)]
pub enum WikiCommand {
    /// Create a wiki you own; NAME is a short local name for it, the title is what everyone sees
    #[command(
        after_help = "Examples:\n  zkwiki wiki create lab --title \"Lab notebook\"\n  zkwiki wiki create notes\n  zkwiki wiki create team --witness https://witness.example:8090 --witness-fingerprint '1a2b 3c4d …' --witness-policy stop"
    )]
    Create {
        /// Local name for the new wiki (what you type after -w)
        name: String,
        /// The title every member's client shows (default: NAME); kept encrypted in the wiki
        #[arg(long)]
        title: Option<String>,
        /// A longer description, kept encrypted in the wiki
        #[arg(long)]
        description: Option<String>,
        /// A witness that co-signs the wiki's head from the start (its base URL; repeat for
        /// several). Its key is fetched and signed into the first keyring
        #[arg(long = "witness", value_name = "URL")]
        witnesses: Vec<String>,
        /// The fingerprint the witness's operator gave you, one per --witness, in order
        #[arg(long = "witness-fingerprint", value_name = "FP")]
        witness_fingerprints: Vec<String>,
        /// When a witness cannot be asked: warn (read on) or stop
        #[arg(long, value_name = "POLICY", default_value = "warn")]
        witness_policy: String,
        /// Add the witnesses without checking their fingerprints
        #[arg(long)]
        yes: bool,
    },
    /// List the wikis you are a member of, with their titles
    List,
    /// Show or change the selected wiki's title (and description)
    #[command(
        after_help = "Examples:\n  zkwiki wiki title\n  zkwiki -w lab wiki title \"Lab notebook 2027\"\n  zkwiki wiki title --description \"Shared with the team\""
    )]
    Title {
        /// The new title (omit to show the current one)
        title: Option<String>,
        /// A new description ("" clears it)
        #[arg(long)]
        description: Option<String>,
    },
    /// Show or change how the selected wiki's pages write `[[..|..]]`: target first (zkwiki's
    /// default) or label first (Otterwiki's); every client reads links in this order
    #[command(
        name = "link-style",
        after_help = "Examples:\n  zkwiki wiki link-style\n  zkwiki wiki link-style 'label|target'"
    )]
    LinkStyle {
        /// The new style (omit to show the current one)
        #[arg(value_parser = ["target|label", "label|target"])]
        style: Option<String>,
    },
    /// Delete a wiki on the server (owner only)
    Delete {
        /// The wiki (name or id)
        wiki: String,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
}

/// `ls`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki ls\n  zkwiki ls projects/\n  zkwiki ls -l --json | jq '.pages[].path'"
)]
pub struct LsArgs {
    /// Only pages under this folder
    pub prefix: Option<String>,
    /// Show kind, size, author and time
    #[arg(long, short)]
    pub long: bool,
}

/// `cat`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki cat Home.md\n  zkwiki cat --json notes/Plan.md | jq .signer\n  zkwiki cat diagrams/flow.png > flow.png"
)]
pub struct CatArgs {
    /// Page path, e.g. `notes/Plan.md`
    pub path: String,
}

/// `put`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  echo '# Plan' | zkwiki put notes/Plan.md\n  zkwiki put notes/Plan.md plan.md\n  zkwiki put images/logo.png logo.png"
)]
pub struct PutArgs {
    /// Page path, e.g. `notes/Plan.md`
    pub path: String,
    /// File to read, or `-` for standard input (the default)
    pub file: Option<PathBuf>,
    /// A message for this version, shown by `zkwiki log` (like a commit message; kept encrypted)
    #[arg(long, short = 'm', value_name = "MESSAGE")]
    pub message: Option<String>,
}

/// `edit`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki edit notes/Plan.md\n  EDITOR='code --wait' zkwiki edit Home.md"
)]
pub struct EditArgs {
    /// Page path (created if missing)
    pub path: String,
    /// A message for this version, shown by `zkwiki log` (like a commit message; kept encrypted)
    #[arg(long, short = 'm', value_name = "MESSAGE")]
    pub message: Option<String>,
}

/// `mv`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki mv notes/Plan.md projects/Plan.md\n  zkwiki mv --update-links Plan.md Archive/Plan.md"
)]
pub struct MvArgs {
    /// Current path
    pub from: String,
    /// New path
    pub to: String,
    /// A message for this version, shown by `zkwiki log` (like a commit message; kept encrypted)
    #[arg(long, short = 'm', value_name = "MESSAGE")]
    pub message: Option<String>,
    /// Also rewrite the links to the page in the pages that link to it, in the same commit
    /// (`[[wikilinks]]` in the wiki's order and markdown links, each kept in its form)
    #[arg(long)]
    pub update_links: bool,
}

/// `auth …`.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// List the profiles on this machine (the current one marked *)
    List,
    /// Make PROFILE the one commands use
    Switch {
        /// A profile name (`user@host`) from `zkwiki auth list`
        profile: String,
    },
}

/// `unlock`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki unlock            # 8 hours\n  zkwiki unlock --for 30m\n  zkwiki unlock --status\n  zkwiki lock"
)]
pub struct UnlockArgs {
    /// How long the keys stay unlocked (45s, 90m, 12h, 30d; at most 30d)
    #[arg(long = "for", value_name = "DURATION", default_value = "8h")]
    pub lifetime: String,
    /// Show whether the keys are unlocked, for whom and until when
    #[arg(long)]
    pub status: bool,
    /// (Internal: the agent process itself.)
    #[arg(long, hide = true)]
    pub serve: bool,
}

/// `rm`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki rm notes/Old.md\n  zkwiki rm --id 0123456789abcdef0123456789abcdef"
)]
pub struct RmArgs {
    /// Page path
    #[arg(required_unless_present = "id")]
    pub path: Option<String>,
    /// The page's id instead of its path (for a page a member wrote against the rules, which
    /// has no usable path; warnings name its id)
    #[arg(long, value_name = "PAGE", conflicts_with = "path")]
    pub id: Option<String>,
}

/// `log`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki log\n  zkwiki log -n 5\n  zkwiki log notes/Plan.md --json"
)]
pub struct LogArgs {
    /// A page (its history follows renames); without it, the wiki's history
    pub path: Option<String>,
    /// Show at most N entries
    #[arg(long, short = 'n', default_value_t = 20, value_name = "N")]
    pub limit: usize,
}

/// `search`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki search deploy checklist\n  zkwiki search -l plan\n  zkwiki search 'kube*' --json"
)]
pub struct SearchArgs {
    /// Words that must all appear; the last also matches as a prefix (end any word with * for a
    /// prefix, or the query with a space for an exact last word)
    #[arg(required = true, num_args = 1..)]
    pub terms: Vec<String>,
    /// Only the paths of matching pages, not the matching lines
    #[arg(long, short = 'l')]
    pub files_with_matches: bool,
    /// At most N matching lines per page
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_lines: usize,
}

/// `clone`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki clone notes\n  zkwiki clone https://wiki.example/git/<wiki id>.git notes-copy"
)]
pub struct CloneArgs {
    /// The wiki's git URL (http(s)://SERVER/git/WIKI_ID.git), or a wiki name or id on your server
    pub url: String,
    /// Folder to create (default: the wiki's name or id)
    pub dir: Option<PathBuf>,
}

/// `decrypt`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki decrypt notes-copy plain\n  zkwiki decrypt --recovery-key backup.git plain\n  zkwiki decrypt --user alice backup.git plain"
)]
pub struct DecryptArgs {
    /// An encrypted clone (a git repository, bare or not)
    pub repo: PathBuf,
    /// Folder to write the plaintext pages to (must not exist or be empty)
    pub out: PathBuf,
    /// Accept a copy older than the newest state this machine has seen (e.g. an old backup)
    #[arg(long)]
    pub allow_older: bool,
    /// Open with your recovery key, using the sealed identities the clone itself carries (no
    /// account on this machine needed)
    #[arg(long, conflicts_with = "user")]
    pub recovery_key: bool,
    /// Read the recovery key from FILE (implies --recovery-key)
    #[arg(long, value_name = "FILE", conflicts_with = "user")]
    pub recovery_key_file: Option<PathBuf>,
    /// Open as member USER with their passphrase, using the sealed identity the clone carries
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
}

/// `pull`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  zkwiki pull\n  zkwiki pull notes-copy")]
pub struct PullArgs {
    /// The folder made by `zkwiki clone`
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// `import`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki import ~/otterwiki-repo\n  zkwiki import ./notes --into archive/\n  \
                  zkwiki import ./obsidian-vault --wikilink-style 'target|label'\n\n\
                  Importing the same source again adds only what is new: the wiki records (encrypted) \
                  how far each git repository was imported, in the same commit as its pages, so an \
                  interrupted import resumes where it stopped. Folders are compared page by page."
)]
pub struct ImportArgs {
    /// A folder of pages, or a git repository (its history is replayed commit by commit)
    pub dir: PathBuf,
    /// Put every page under this folder of the wiki
    #[arg(long, value_name = "FOLDER")]
    pub into: Option<String>,
    /// For a git repository: import only its current files, not its history
    #[arg(long)]
    pub no_history: bool,
    /// How the source's pages write `[[..|..]]`, saved as the wiki's setting (default: label|target
    /// for an Otterwiki repository, else the wiki's setting unchanged)
    #[arg(long, value_name = "STYLE", value_parser = ["target|label", "label|target"])]
    pub wikilink_style: Option<String>,
}

/// `export`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki export ./backup\n  zkwiki export --git ./otterwiki-repo"
)]
pub struct ExportArgs {
    /// Folder to write (must not exist or be empty)
    pub dir: PathBuf,
    /// Write a git repository replaying the wiki's history (one commit per wiki version, with
    /// each version's author, e-mail, time and message), such as an Otterwiki can serve
    #[arg(long)]
    pub git: bool,
}

/// `key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write your private key, unencrypted, to FILE (mode 0600): for offline use without a passphrase
    Export {
        /// Where to write the key file
        file: PathBuf,
        /// Protect the key with this AWS KMS key (ARN, id or alias) instead of writing it in the
        /// clear: unlocking then needs `kms:Decrypt` on it (see docs/kms.md)
        #[arg(long, value_name = "ARN")]
        kms_key: Option<String>,
    },
    /// Show your public keys and fingerprint
    Show,
}

/// `textconv`.
#[derive(Debug, Args)]
pub struct TextconvArgs {
    /// The file git hands over
    pub file: PathBuf,
}

/// `credential`.
#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// get, store or erase
    pub operation: String,
}

/// `member …`.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add a registered user (check their key fingerprint with them first)
    Add(MemberAddArgs),
    /// Remove a member: a new key epoch starts; prints what they could have read
    Rm {
        /// The member's name
        user: String,
    },
    /// List members, roles and key fingerprints
    List,
}

/// `member add`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki member add bob --role writer --fingerprint '1a2b 3c4d …'\n  zkwiki member add carol --role reader --folder research"
)]
pub struct MemberAddArgs {
    /// The user's name on the server
    pub user: String,
    /// owner, writer or reader
    #[arg(long, default_value = "writer")]
    pub role: String,
    /// The fingerprint the user read to you (from `zkwiki whoami`); refused if it differs
    #[arg(long)]
    pub fingerprint: Option<String>,
    /// Limit the member to one folder
    #[arg(long, value_name = "FOLDER")]
    pub folder: Option<String>,
    /// Add without checking the fingerprint
    #[arg(long)]
    pub yes: bool,
}

/// `witness …`.
#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// List the wiki's witnesses, their fingerprints, the policy, and what each one holds
    List,
    /// Add a witness (owners): its key is fetched from URL; check its fingerprint with its operator
    #[command(
        after_help = "Examples:\n  zkwiki witness add https://witness.example:8090 --fingerprint '1a2b 3c4d …'\n  zkwiki witness add http://127.0.0.1:8090 --yes"
    )]
    Add {
        /// The witness's base URL (what `zkwiki-server witness` printed)
        url: String,
        /// The fingerprint the witness's operator read to you (`zkwiki-server witness --print-key`)
        #[arg(long)]
        fingerprint: Option<String>,
        /// Add without checking the fingerprint
        #[arg(long)]
        yes: bool,
    },
    /// Remove a witness (owners); works while that witness is down
    Rm {
        /// The witness's URL, as `zkwiki witness list` shows it
        url: String,
    },
    /// What every client does when a witness cannot be asked: warn (read on) or stop (owners)
    Policy {
        /// warn or stop
        policy: String,
    },
}

/// `agent …`.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create a key for an agent, add it to the wiki's keyring and give it a server token
    Grant(AgentGrantArgs),
    /// List agents and their tokens
    List,
    /// Revoke an agent: token refused at once, new key epoch; prints what it could have read
    Revoke {
        /// The agent's name
        name: String,
    },
}

/// `agent grant`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki agent grant scribe --role write --expires 30d\n  zkwiki agent grant reader-bot --role read --prefix research/ --expires 7d --out bot.json"
)]
pub struct AgentGrantArgs {
    /// A name for the agent (a-z, 0-9, '.', '_', '-')
    pub name: String,
    /// read (enforced by cryptography: its writes are rejected) or write
    #[arg(long)]
    pub role: String,
    /// How long its server token lasts: 45m, 12h, 30d, 1y (at most 1y)
    #[arg(long)]
    pub expires: String,
    /// Limit it to one folder, e.g. research/ (it cannot decrypt anything else)
    #[arg(long, value_name = "FOLDER")]
    pub prefix: Option<String>,
    /// Where to write the agent key file (default NAME.zkwiki-agent.json)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Protect the agent's identity with this AWS KMS key (for agents running under an IAM role)
    #[arg(long, value_name = "ARN")]
    pub kms_key: Option<String>,
}

/// `rotate`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  zkwiki rotate\n  zkwiki rotate --reencrypt")]
pub struct RotateArgs {
    /// Also re-encrypt every page under the new epoch (resumable with `zkwiki reencrypt`)
    #[arg(long)]
    pub reencrypt: bool,
}

/// `reencrypt`.
#[derive(Debug, Args)]
pub struct ReencryptArgs {}

/// `mcp`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkwiki mcp --key scribe.zkwiki-agent.json\n  claude mcp add zkwiki -- zkwiki mcp --key /path/scribe.zkwiki-agent.json\n  zkwiki mcp --key scribe.zkwiki-agent.json --http 127.0.0.1:8765 --http-token-file token.txt"
)]
pub struct McpArgs {
    /// The agent key file from `zkwiki agent grant` (or any key file, with --server/--wiki)
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Serve MCP over streamable HTTP at http://ADDR/mcp instead of stdio (e.g. 127.0.0.1:8765;
    /// port 0 picks a free one). Clients must send the bearer token
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    /// With --http: the bearer token clients must send, read from FILE (default: a new random
    /// token, printed once on stderr)
    #[arg(long, value_name = "FILE", requires = "http")]
    pub http_token_file: Option<PathBuf>,
    /// With --http: allow an address that is not loopback. Anyone who can reach it and has the
    /// token reads (and, with a writer's key, writes) the wiki as this key, over plain HTTP
    #[arg(long, requires = "http")]
    pub http_allow_non_loopback: bool,
}
