//! Numeric reply codes (RFC 1459/2812, modern IRC) the server sends.

/// Welcome (registration complete).
pub const RPL_WELCOME: &str = "001";
/// Your host.
pub const RPL_YOURHOST: &str = "002";
/// Server creation.
pub const RPL_CREATED: &str = "003";
/// Server name, version and modes.
pub const RPL_MYINFO: &str = "004";
/// ISUPPORT tokens.
pub const RPL_ISUPPORT: &str = "005";
/// User mode query.
pub const RPL_UMODEIS: &str = "221";
/// End of WHO.
pub const RPL_ENDOFWHO: &str = "315";
/// Channel mode query.
pub const RPL_CHANNELMODEIS: &str = "324";
/// NAMES entries.
pub const RPL_NAMREPLY: &str = "353";
/// End of NAMES.
pub const RPL_ENDOFNAMES: &str = "366";
/// No such nick.
pub const ERR_NOSUCHNICK: &str = "401";
/// No such channel.
pub const ERR_NOSUCHCHANNEL: &str = "403";
/// Cannot send to channel (not a member).
pub const ERR_CANNOTSENDTOCHAN: &str = "404";
/// Too many channels joined.
pub const ERR_TOOMANYCHANNELS: &str = "405";
/// Too many targets.
pub const ERR_TOOMANYTARGETS: &str = "407";
/// PING without origin.
pub const ERR_NOORIGIN: &str = "409";
/// Unknown CAP subcommand.
pub const ERR_INVALIDCAPCMD: &str = "410";
/// PRIVMSG without recipient.
pub const ERR_NORECIPIENT: &str = "411";
/// PRIVMSG without text.
pub const ERR_NOTEXTTOSEND: &str = "412";
/// Input line too long.
pub const ERR_INPUTTOOLONG: &str = "417";
/// Unknown command.
pub const ERR_UNKNOWNCOMMAND: &str = "421";
/// No MOTD.
pub const ERR_NOMOTD: &str = "422";
/// NICK without a nickname.
pub const ERR_NONICKNAMEGIVEN: &str = "431";
/// Nickname not allowed.
pub const ERR_ERRONEUSNICKNAME: &str = "432";
/// Nickname taken.
pub const ERR_NICKNAMEINUSE: &str = "433";
/// Not on that channel.
pub const ERR_NOTONCHANNEL: &str = "442";
/// Command before registration.
pub const ERR_NOTREGISTERED: &str = "451";
/// Too few parameters.
pub const ERR_NEEDMOREPARAMS: &str = "461";
/// USER after registration.
pub const ERR_ALREADYREGISTRED: &str = "462";
/// MODE on another user.
pub const ERR_USERSDONTMATCH: &str = "502";
