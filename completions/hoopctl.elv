
use builtin;
use str;

set edit:completion:arg-completer[hoopctl] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'hoopctl'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'hoopctl'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand ca 'Manage the local certificate authority that signs intercepted hosts'
            cand connect 'Run an agent through hoopctl.'
            cand demo 'A self-contained offline tour: masking, a blocked command, an approval you answer, the record'
            cand claude 'Route plain `claude` through hoopctl via ~/.claude/settings.json'
            cand login 'Log in with the organisation''s OpenID provider (browser, or --device).'
            cand watch 'The live TUI: requests, tool calls and approvals of every running proxy'
            cand pending 'List tool calls waiting for approval in running proxies'
            cand approve 'Let a held tool call run'
            cand deny 'Refuse a held tool call; the agent is told why'
            cand logout 'Revoke the tokens at the provider (when it can) and delete them here'
            cand status 'Show the login, token store, gateway, CA, the local record and running proxies'
            cand token 'Print a valid access token (refreshed when it is about to expire), for scripts'
            cand policy 'Try the policy: decide a tool call, or mask stdin'
            cand sessions 'The local record of what agents did: list, show, search, export, verify'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopctl;ca'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
            cand init 'Create the local CA (done automatically by the first `connect`)'
            cand show 'Print the CA''s subject, validity, SHA-256 fingerprint and name constraints'
            cand path 'Print the path of the CA certificate (PEM), e.g. for NODE_EXTRA_CA_CERTS'
            cand rotate 'Replace the CA with a new one (new key); restart running proxies afterwards'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopctl;ca;init'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;ca;show'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;ca;path'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;ca;rotate'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;ca;help'= {
            cand init 'Create the local CA (done automatically by the first `connect`)'
            cand show 'Print the CA''s subject, validity, SHA-256 fingerprint and name constraints'
            cand path 'Print the path of the CA certificate (PEM), e.g. for NODE_EXTRA_CA_CERTS'
            cand rotate 'Replace the CA with a new one (new key); restart running proxies afterwards'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopctl;ca;help;init'= {
        }
        &'hoopctl;ca;help;show'= {
        }
        &'hoopctl;ca;help;path'= {
        }
        &'hoopctl;ca;help;rotate'= {
        }
        &'hoopctl;ca;help;help'= {
        }
        &'hoopctl;connect'= {
            cand --gateway 'Send traffic through the organisation''s gateway at URL (default: the profile''s gateway, set by `hoopctl login --gateway`)'
            cand --gateway-ca 'Extra CA certificates (PEM) to trust for the gateway, besides the system store'
            cand --connection 'The gateway connection to ask credentials for [default: claude-code]'
            cand --duration 'Ask the gateway for a credential valid this many seconds (default: the gateway''s choice)'
            cand --listen 'Loopback address to listen on (default: a free port with a command, the profile''s stable address without; 127.0.0.1:0 picks any free port)'
            cand --upstream 'Send intercepted requests here instead of https://api.anthropic.com (http or https URL; direct mode)'
            cand --upstream-ca 'Extra CA certificates (PEM) to trust for the upstream, besides the system store'
            cand --policy 'Policy file (TOML); built-in defaults apply where it is silent'
            cand --shell 'Shell to quote --print-env lines for (default: from $SHELL)'
            cand --connect-timeout 'Seconds to wait for an upstream connection before answering 502'
            cand --header-read-timeout 'Seconds a client may take to send a request head before it is dropped'
            cand --drain-timeout 'Seconds in-flight streams may run on after Ctrl-C / SIGTERM'
            cand --tls-handshake-timeout 'Seconds an agent may take for its whole TLS handshake (tests)'
            cand --idle-timeout 'Seconds a connection with no request in flight stays open (tests)'
            cand --response-head-timeout 'Seconds to wait for an upstream''s response head before a 504 (tests)'
            cand --body-progress-timeout 'Seconds in which a request body must bring at least 1 KiB while hoopctl waits for it (408 otherwise). For tests'
            cand --max-stream-bytes 'Most decoded bytes of one inspected event stream (tests)'
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand --direct 'Send traffic straight to the API (no gateway); the agent''s own key is used'
            cand --print-env 'Only print the environment for the stable proxy, quoted for a shell, and exit'
            cand --tui 'Run the stable proxy and the `hoopctl watch` TUI in this terminal (quitting the TUI stops the proxy). Not with a command: it owns the terminal'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopctl;demo'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand --yes 'Approve the held command without asking'
            cand --no 'Deny the held command without asking'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopctl;claude'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
            cand configure 'Set HTTPS_PROXY, NODE_EXTRA_CA_CERTS and NO_PROXY in the `env` block of ~/.claude/settings.json (other keys kept; a backup is written)'
            cand unconfigure 'Remove hoopctl''s keys again (restoring values they replaced)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopctl;claude;configure'= {
            cand --listen 'Address of the stable proxy (default: the profile''s, 127.0.0.1:7733)'
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;claude;unconfigure'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;claude;help'= {
            cand configure 'Set HTTPS_PROXY, NODE_EXTRA_CA_CERTS and NO_PROXY in the `env` block of ~/.claude/settings.json (other keys kept; a backup is written)'
            cand unconfigure 'Remove hoopctl''s keys again (restoring values they replaced)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopctl;claude;help;configure'= {
        }
        &'hoopctl;claude;help;unconfigure'= {
        }
        &'hoopctl;claude;help;help'= {
        }
        &'hoopctl;login'= {
            cand --gateway 'The organisation''s gateway; its /api/publicserverinfo names the provider'
            cand --gateway-ca 'Extra CA certificates (PEM) to trust for the gateway; remembered in the profile'
            cand --issuer 'OpenID provider (issuer URL)'
            cand --client-id 'OAuth client id registered for hoopctl (a public client, no secret)'
            cand --scope 'Extra scope to request (repeatable); openid, email, profile and offline_access (when offered) are always requested'
            cand --browser-cmd 'Command that opens the URL (given as its last argument); default $BROWSER or the system opener'
            cand --token-store 'Where tokens are kept (default: the OS keyring)'
            cand --timeout 'Seconds to wait for the login to complete'
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand --no-browser 'Print the URL instead of opening a browser (still listens for the answer)'
            cand --device 'Use the device authorization grant: enter a code on another device'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopctl;watch'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopctl;pending'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;approve'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;deny'= {
            cand --reason 'Shown to the agent and recorded'
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;logout'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;status'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;token'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;policy'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
            cand check 'What policy decides for one tool call, which rule, and why.'
            cand mask 'Mask text or JSON read from stdin, as it would leave the machine.'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopctl;policy;check'= {
            cand --tool 'Tool name as the model sends it (Bash, Write, mcp__db__query, ...)'
            cand --input 'The tool input as JSON'
            cand --policy 'Policy file (default: the profile''s, else the built-in policy)'
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopctl;policy;mask'= {
            cand --policy 'policy'
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopctl;policy;help'= {
            cand check 'What policy decides for one tool call, which rule, and why.'
            cand mask 'Mask text or JSON read from stdin, as it would leave the machine.'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopctl;policy;help;check'= {
        }
        &'hoopctl;policy;help;mask'= {
        }
        &'hoopctl;policy;help;help'= {
        }
        &'hoopctl;sessions'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand list 'Recorded sessions, newest first'
            cand show 'Every event of one session, in order: requests, answers, tool calls and decisions'
            cand search 'Full-text search over prompts, answers and commands, e.g. `''DROP TABLE''`'
            cand export 'Stream events as JSON lines (one object per event), for a SIEM'
            cand verify 'Check the hash chains: report the first broken link of each session'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopctl;sessions;list'= {
            cand --since 'Only sessions active since T (RFC 3339, a date, or an age like 30m, 24h, 7d)'
            cand --limit 'At most N sessions, the most recently active first'
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;sessions;show'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand --bodies 'Also print the recorded bodies (masked requests, assembled answers)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopctl;sessions;search'= {
            cand --limit 'At most N matches, the newest first'
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand --raw 'raw'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopctl;sessions;export'= {
            cand --format 'format'
            cand --since 'Only events since T (RFC 3339, a date, or an age like 30m, 24h, 7d)'
            cand --session 'Only this session'
            cand --after-id 'Only events with an id above N: give the `id` of the last line a previous export wrote, and nothing is repeated or missed (ids only grow, and are never used again)'
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopctl;sessions;verify'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'hoopctl;sessions;help'= {
            cand list 'Recorded sessions, newest first'
            cand show 'Every event of one session, in order: requests, answers, tool calls and decisions'
            cand search 'Full-text search over prompts, answers and commands, e.g. `''DROP TABLE''`'
            cand export 'Stream events as JSON lines (one object per event), for a SIEM'
            cand verify 'Check the hash chains: report the first broken link of each session'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopctl;sessions;help;list'= {
        }
        &'hoopctl;sessions;help;show'= {
        }
        &'hoopctl;sessions;help;search'= {
        }
        &'hoopctl;sessions;help;export'= {
        }
        &'hoopctl;sessions;help;verify'= {
        }
        &'hoopctl;sessions;help;help'= {
        }
        &'hoopctl;completions'= {
            cand --profile 'Configuration profile to use'
            cand --output 'Output format of commands that report something'
            cand --config 'Configuration file (default: config.toml in the config directory)'
            cand -v 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'More logging (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hoopctl;help'= {
            cand ca 'Manage the local certificate authority that signs intercepted hosts'
            cand connect 'Run an agent through hoopctl.'
            cand demo 'A self-contained offline tour: masking, a blocked command, an approval you answer, the record'
            cand claude 'Route plain `claude` through hoopctl via ~/.claude/settings.json'
            cand login 'Log in with the organisation''s OpenID provider (browser, or --device).'
            cand watch 'The live TUI: requests, tool calls and approvals of every running proxy'
            cand pending 'List tool calls waiting for approval in running proxies'
            cand approve 'Let a held tool call run'
            cand deny 'Refuse a held tool call; the agent is told why'
            cand logout 'Revoke the tokens at the provider (when it can) and delete them here'
            cand status 'Show the login, token store, gateway, CA, the local record and running proxies'
            cand token 'Print a valid access token (refreshed when it is about to expire), for scripts'
            cand policy 'Try the policy: decide a tool call, or mask stdin'
            cand sessions 'The local record of what agents did: list, show, search, export, verify'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hoopctl;help;ca'= {
            cand init 'Create the local CA (done automatically by the first `connect`)'
            cand show 'Print the CA''s subject, validity, SHA-256 fingerprint and name constraints'
            cand path 'Print the path of the CA certificate (PEM), e.g. for NODE_EXTRA_CA_CERTS'
            cand rotate 'Replace the CA with a new one (new key); restart running proxies afterwards'
        }
        &'hoopctl;help;ca;init'= {
        }
        &'hoopctl;help;ca;show'= {
        }
        &'hoopctl;help;ca;path'= {
        }
        &'hoopctl;help;ca;rotate'= {
        }
        &'hoopctl;help;connect'= {
        }
        &'hoopctl;help;demo'= {
        }
        &'hoopctl;help;claude'= {
            cand configure 'Set HTTPS_PROXY, NODE_EXTRA_CA_CERTS and NO_PROXY in the `env` block of ~/.claude/settings.json (other keys kept; a backup is written)'
            cand unconfigure 'Remove hoopctl''s keys again (restoring values they replaced)'
        }
        &'hoopctl;help;claude;configure'= {
        }
        &'hoopctl;help;claude;unconfigure'= {
        }
        &'hoopctl;help;login'= {
        }
        &'hoopctl;help;watch'= {
        }
        &'hoopctl;help;pending'= {
        }
        &'hoopctl;help;approve'= {
        }
        &'hoopctl;help;deny'= {
        }
        &'hoopctl;help;logout'= {
        }
        &'hoopctl;help;status'= {
        }
        &'hoopctl;help;token'= {
        }
        &'hoopctl;help;policy'= {
            cand check 'What policy decides for one tool call, which rule, and why.'
            cand mask 'Mask text or JSON read from stdin, as it would leave the machine.'
        }
        &'hoopctl;help;policy;check'= {
        }
        &'hoopctl;help;policy;mask'= {
        }
        &'hoopctl;help;sessions'= {
            cand list 'Recorded sessions, newest first'
            cand show 'Every event of one session, in order: requests, answers, tool calls and decisions'
            cand search 'Full-text search over prompts, answers and commands, e.g. `''DROP TABLE''`'
            cand export 'Stream events as JSON lines (one object per event), for a SIEM'
            cand verify 'Check the hash chains: report the first broken link of each session'
        }
        &'hoopctl;help;sessions;list'= {
        }
        &'hoopctl;help;sessions;show'= {
        }
        &'hoopctl;help;sessions;search'= {
        }
        &'hoopctl;help;sessions;export'= {
        }
        &'hoopctl;help;sessions;verify'= {
        }
        &'hoopctl;help;completions'= {
        }
        &'hoopctl;help;help'= {
        }
    ]
    $completions[$command]
}
