# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hoopctl_global_optspecs
    string join \n profile= output= v/verbose config= h/help V/version
end

function __fish_hoopctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hoopctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hoopctl_using_subcommand
    set -l cmd (__fish_hoopctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hoopctl -n "__fish_hoopctl_needs_command" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_needs_command" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_needs_command" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_needs_command" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -s V -l version -d 'Print version'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "ca" -d 'Manage the local certificate authority that signs intercepted hosts'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "connect" -d 'Run an agent through hoopctl.'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "demo" -d 'A self-contained offline tour: masking, a blocked command, an approval you answer, the record'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "claude" -d 'Route plain `claude` through hoopctl via ~/.claude/settings.json'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "login" -d 'Log in with the organisation\'s OpenID provider (browser, or --device).'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "watch" -d 'The live TUI: requests, tool calls and approvals of every running proxy'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "pending" -d 'List tool calls waiting for approval in running proxies'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "approve" -d 'Let a held tool call run'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "deny" -d 'Refuse a held tool call; the agent is told why'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "logout" -d 'Revoke the tokens at the provider (when it can) and delete them here'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "status" -d 'Show the login, token store, gateway, CA, the local record and running proxies'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "token" -d 'Print a valid access token (refreshed when it is about to expire), for scripts'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "policy" -d 'Try the policy: decide a tool call, or mask stdin'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "sessions" -d 'The local record of what agents did: list, show, search, export, verify'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c hoopctl -n "__fish_hoopctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and not __fish_seen_subcommand_from init show path rotate help" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and not __fish_seen_subcommand_from init show path rotate help" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and not __fish_seen_subcommand_from init show path rotate help" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and not __fish_seen_subcommand_from init show path rotate help" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and not __fish_seen_subcommand_from init show path rotate help" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and not __fish_seen_subcommand_from init show path rotate help" -f -a "init" -d 'Create the local CA (done automatically by the first `connect`)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and not __fish_seen_subcommand_from init show path rotate help" -f -a "show" -d 'Print the CA\'s subject, validity, SHA-256 fingerprint and name constraints'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and not __fish_seen_subcommand_from init show path rotate help" -f -a "path" -d 'Print the path of the CA certificate (PEM), e.g. for NODE_EXTRA_CA_CERTS'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and not __fish_seen_subcommand_from init show path rotate help" -f -a "rotate" -d 'Replace the CA with a new one (new key); restart running proxies afterwards'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and not __fish_seen_subcommand_from init show path rotate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from init" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from init" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from init" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from init" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from show" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from show" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from show" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from path" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from path" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from path" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from path" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from path" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from rotate" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from rotate" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from rotate" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from rotate" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from rotate" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "init" -d 'Create the local CA (done automatically by the first `connect`)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print the CA\'s subject, validity, SHA-256 fingerprint and name constraints'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "path" -d 'Print the path of the CA certificate (PEM), e.g. for NODE_EXTRA_CA_CERTS'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "rotate" -d 'Replace the CA with a new one (new key); restart running proxies afterwards'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand ca; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l gateway -d 'Send traffic through the organisation\'s gateway at URL (default: the profile\'s gateway, set by `hoopctl login --gateway`)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l gateway-ca -d 'Extra CA certificates (PEM) to trust for the gateway, besides the system store' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l connection -d 'The gateway connection to ask credentials for [default: claude-code]' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l duration -d 'Ask the gateway for a credential valid this many seconds (default: the gateway\'s choice)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l listen -d 'Loopback address to listen on (default: a free port with a command, the profile\'s stable address without; 127.0.0.1:0 picks any free port)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l upstream -d 'Send intercepted requests here instead of https://api.anthropic.com (http or https URL; direct mode)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l upstream-ca -d 'Extra CA certificates (PEM) to trust for the upstream, besides the system store' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l policy -d 'Policy file (TOML); built-in defaults apply where it is silent' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l shell -d 'Shell to quote --print-env lines for (default: from $SHELL)' -r -f -a "bash\t''
zsh\t''
fish\t''
powershell\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l connect-timeout -d 'Seconds to wait for an upstream connection before answering 502' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l header-read-timeout -d 'Seconds a client may take to send a request head before it is dropped' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l drain-timeout -d 'Seconds in-flight streams may run on after Ctrl-C / SIGTERM' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l tls-handshake-timeout -d 'Seconds an agent may take for its whole TLS handshake (tests)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l idle-timeout -d 'Seconds a connection with no request in flight stays open (tests)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l response-head-timeout -d 'Seconds to wait for an upstream\'s response head before a 504 (tests)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l body-progress-timeout -d 'Seconds in which a request body must bring at least 1 KiB while hoopctl waits for it (408 otherwise). For tests' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l max-stream-bytes -d 'Most decoded bytes of one inspected event stream (tests)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l direct -d 'Send traffic straight to the API (no gateway); the agent\'s own key is used'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l print-env -d 'Only print the environment for the stable proxy, quoted for a shell, and exit'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -l tui -d 'Run the stable proxy and the `hoopctl watch` TUI in this terminal (quitting the TUI stops the proxy). Not with a command: it owns the terminal'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand connect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand demo" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand demo" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand demo" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand demo" -l yes -d 'Approve the held command without asking'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand demo" -l no -d 'Deny the held command without asking'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand demo" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and not __fish_seen_subcommand_from configure unconfigure help" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and not __fish_seen_subcommand_from configure unconfigure help" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and not __fish_seen_subcommand_from configure unconfigure help" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and not __fish_seen_subcommand_from configure unconfigure help" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and not __fish_seen_subcommand_from configure unconfigure help" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and not __fish_seen_subcommand_from configure unconfigure help" -f -a "configure" -d 'Set HTTPS_PROXY, NODE_EXTRA_CA_CERTS and NO_PROXY in the `env` block of ~/.claude/settings.json (other keys kept; a backup is written)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and not __fish_seen_subcommand_from configure unconfigure help" -f -a "unconfigure" -d 'Remove hoopctl\'s keys again (restoring values they replaced)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and not __fish_seen_subcommand_from configure unconfigure help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from configure" -l listen -d 'Address of the stable proxy (default: the profile\'s, 127.0.0.1:7733)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from configure" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from configure" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from configure" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from configure" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from configure" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from unconfigure" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from unconfigure" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from unconfigure" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from unconfigure" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from unconfigure" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from help" -f -a "configure" -d 'Set HTTPS_PROXY, NODE_EXTRA_CA_CERTS and NO_PROXY in the `env` block of ~/.claude/settings.json (other keys kept; a backup is written)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from help" -f -a "unconfigure" -d 'Remove hoopctl\'s keys again (restoring values they replaced)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand claude; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l gateway -d 'The organisation\'s gateway; its /api/publicserverinfo names the provider' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l gateway-ca -d 'Extra CA certificates (PEM) to trust for the gateway; remembered in the profile' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l issuer -d 'OpenID provider (issuer URL)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l client-id -d 'OAuth client id registered for hoopctl (a public client, no secret)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l scope -d 'Extra scope to request (repeatable); openid, email, profile and offline_access (when offered) are always requested' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l browser-cmd -d 'Command that opens the URL (given as its last argument); default $BROWSER or the system opener' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l token-store -d 'Where tokens are kept (default: the OS keyring)' -r -f -a "keyring\t''
file\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l timeout -d 'Seconds to wait for the login to complete' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l no-browser -d 'Print the URL instead of opening a browser (still listens for the answer)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -l device -d 'Use the device authorization grant: enter a code on another device'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand watch" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand watch" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand watch" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand watch" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand pending" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand pending" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand pending" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand pending" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand pending" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand approve" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -l reason -d 'Shown to the agent and recorded' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand deny" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand logout" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand logout" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand logout" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand logout" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand logout" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand status" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand status" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand status" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand status" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand token" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand token" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand token" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand token" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand token" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from check mask help" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from check mask help" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from check mask help" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from check mask help" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from check mask help" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from check mask help" -f -a "check" -d 'What policy decides for one tool call, which rule, and why.'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from check mask help" -f -a "mask" -d 'Mask text or JSON read from stdin, as it would leave the machine.'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and not __fish_seen_subcommand_from check mask help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from check" -l tool -d 'Tool name as the model sends it (Bash, Write, mcp__db__query, ...)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from check" -l input -d 'The tool input as JSON' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from check" -l policy -d 'Policy file (default: the profile\'s, else the built-in policy)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from check" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from check" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from check" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from check" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from mask" -l policy -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from mask" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from mask" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from mask" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from mask" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from mask" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "check" -d 'What policy decides for one tool call, which rule, and why.'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "mask" -d 'Mask text or JSON read from stdin, as it would leave the machine.'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list show search export verify help" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list show search export verify help" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list show search export verify help" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list show search export verify help" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list show search export verify help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list show search export verify help" -f -a "list" -d 'Recorded sessions, newest first'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list show search export verify help" -f -a "show" -d 'Every event of one session, in order: requests, answers, tool calls and decisions'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list show search export verify help" -f -a "search" -d 'Full-text search over prompts, answers and commands, e.g. `\'DROP TABLE\'`'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list show search export verify help" -f -a "export" -d 'Stream events as JSON lines (one object per event), for a SIEM'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list show search export verify help" -f -a "verify" -d 'Check the hash chains: report the first broken link of each session'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and not __fish_seen_subcommand_from list show search export verify help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l since -d 'Only sessions active since T (RFC 3339, a date, or an age like 30m, 24h, 7d)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l limit -d 'At most N sessions, the most recently active first' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -l bodies -d 'Also print the recorded bodies (masked requests, assembled answers)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from search" -l limit -d 'At most N matches, the newest first' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from search" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from search" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from search" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from search" -l raw
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from search" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from search" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l format -r -f -a "jsonl\t'One JSON object per line'"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l since -d 'Only events since T (RFC 3339, a date, or an age like 30m, 24h, 7d)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l session -d 'Only this session' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l after-id -d 'Only events with an id above N: give the `id` of the last line a previous export wrote, and nothing is repeated or missed (ids only grow, and are never used again)' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from verify" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from verify" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from verify" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from verify" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "list" -d 'Recorded sessions, newest first'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "show" -d 'Every event of one session, in order: requests, answers, tool calls and decisions'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "search" -d 'Full-text search over prompts, answers and commands, e.g. `\'DROP TABLE\'`'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "export" -d 'Stream events as JSON lines (one object per event), for a SIEM'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check the hash chains: report the first broken link of each session'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -l profile -d 'Configuration profile to use' -r
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -l output -d 'Output format of commands that report something' -r -f -a "text\t''
json\t''"
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -l config -d 'Configuration file (default: config.toml in the config directory)' -r -F
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -s v -l verbose -d 'More logging (-v debug, -vv trace); RUST_LOG overrides'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand completions" -s h -l help -d 'Print help'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "ca" -d 'Manage the local certificate authority that signs intercepted hosts'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "connect" -d 'Run an agent through hoopctl.'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "demo" -d 'A self-contained offline tour: masking, a blocked command, an approval you answer, the record'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "claude" -d 'Route plain `claude` through hoopctl via ~/.claude/settings.json'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "login" -d 'Log in with the organisation\'s OpenID provider (browser, or --device).'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "watch" -d 'The live TUI: requests, tool calls and approvals of every running proxy'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "pending" -d 'List tool calls waiting for approval in running proxies'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "approve" -d 'Let a held tool call run'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "deny" -d 'Refuse a held tool call; the agent is told why'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "logout" -d 'Revoke the tokens at the provider (when it can) and delete them here'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "status" -d 'Show the login, token store, gateway, CA, the local record and running proxies'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "token" -d 'Print a valid access token (refreshed when it is about to expire), for scripts'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "policy" -d 'Try the policy: decide a tool call, or mask stdin'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "sessions" -d 'The local record of what agents did: list, show, search, export, verify'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and not __fish_seen_subcommand_from ca connect demo claude login watch pending approve deny logout status token policy sessions completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from ca" -f -a "init" -d 'Create the local CA (done automatically by the first `connect`)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from ca" -f -a "show" -d 'Print the CA\'s subject, validity, SHA-256 fingerprint and name constraints'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from ca" -f -a "path" -d 'Print the path of the CA certificate (PEM), e.g. for NODE_EXTRA_CA_CERTS'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from ca" -f -a "rotate" -d 'Replace the CA with a new one (new key); restart running proxies afterwards'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from claude" -f -a "configure" -d 'Set HTTPS_PROXY, NODE_EXTRA_CA_CERTS and NO_PROXY in the `env` block of ~/.claude/settings.json (other keys kept; a backup is written)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from claude" -f -a "unconfigure" -d 'Remove hoopctl\'s keys again (restoring values they replaced)'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "check" -d 'What policy decides for one tool call, which rule, and why.'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "mask" -d 'Mask text or JSON read from stdin, as it would leave the machine.'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "list" -d 'Recorded sessions, newest first'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "show" -d 'Every event of one session, in order: requests, answers, tool calls and decisions'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "search" -d 'Full-text search over prompts, answers and commands, e.g. `\'DROP TABLE\'`'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "export" -d 'Stream events as JSON lines (one object per event), for a SIEM'
complete -c hoopctl -n "__fish_hoopctl_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "verify" -d 'Check the hash chains: report the first broken link of each session'
