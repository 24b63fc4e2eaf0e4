import ArgumentParser
import Foundation
import VSliceKit

/// Reads the command line the way a user means it, before ArgumentParser sees it:
/// - an option's value that starts with `-` is its value (`--crf -5`, `--overlap -1`, `-o -out.mp4`), unless
///   it is itself one of the command's options (`--crf --preset fast` still says "missing value");
/// - an argument that names an existing file is a file (`transcode -dash.mp4 -o out.mp4` would otherwise be
///   read as the short flags `-d -a -s -h …` and print the help with exit 0);
/// - any other unknown `-xyz` is refused with its name, instead of being split into short flags;
/// - a mistyped command (`vslice transcod …`, `vslice help transcod`) is refused with the nearest command.
/// The command's options come from ArgumentParser's own description of them (`_dumpHelp`).
enum Arguments {
    struct Name: Decodable { var kind: String; var name: String }
    struct Argument: Decodable { var kind: String; var names: [Name]? }
    struct Command: Decodable {
        var commandName: String
        var arguments: [Argument]?
        var subcommands: [Command]?
    }
    struct Info: Decodable { var command: Command }

    static func spec(_ root: any ParsableCommand.Type) -> Command? {
        try? JSONDecoder().decode(Info.self, from: Data(root._dumpHelp().utf8)).command
    }

    static func spelled(_ n: Name) -> String { n.kind == "short" ? "-" + n.name : "--" + n.name }

    static func normalize(_ args: [String], root: Command) throws(VSliceError) -> [String] {
        guard let first = args.first else { return args }
        let commands = root.subcommands ?? []
        let names = commands.map(\.commandName)
        if first == "help" {
            if args.count > 1, !args[1].hasPrefix("-"), !names.contains(args[1]) { throw unknownCommand(args[1], names) }
            return args
        }
        if first.hasPrefix("-") { return args }
        guard let command = commands.first(where: { $0.commandName == first }) else { throw unknownCommand(first, names) }
        return try [first] + normalize(Array(args.dropFirst()), command: command)
    }

    static func normalize(_ args: [String], command: Command) throws(VSliceError) -> [String] {
        var known: [String: Argument] = [:]
        var shortFlags = Set<Character>()
        for a in command.arguments ?? [] {
            for n in a.names ?? [] {
                known[spelled(n)] = a
                if n.kind == "short", a.kind == "flag", let c = n.name.first { shortFlags.insert(c) }
            }
        }
        func isKnown(_ token: String) -> Bool {
            let name = token.split(separator: "=", maxSplits: 1).first.map(String.init) ?? token
            return known[name] != nil
        }
        var out: [String] = []
        var i = 0
        while i < args.count {
            let token = args[i]
            i += 1
            if token == "--" { out += args[(i - 1)...]; break }
            if let a = known[token], a.kind == "option" {
                let long = a.names?.first { $0.kind == "long" }.map(spelled) ?? token
                if i < args.count, args[i].hasPrefix("-"), args[i] != "--", !isKnown(args[i]) {
                    out.append(long + "=" + args[i])
                    i += 1
                } else {
                    out.append(token)
                    if i < args.count { out.append(args[i]); i += 1 }
                }
                continue
            }
            guard token.hasPrefix("-"), token.count > 1, !isKnown(token) else { out.append(token); continue }
            var st = stat()
            if lstat(token, &st) == 0 {
                out.append("./" + token)
                continue
            }
            // Combined short flags (-qv) stay; anything else is an unknown option, named as typed.
            let body = token.dropFirst()
            if !token.hasPrefix("--") && body.allSatisfy(shortFlags.contains) { out.append(token); continue }
            if token.hasPrefix("--") { out.append(token); continue }
            throw VSliceError(.usage, "check options",
                              reason: "unknown option '\(token)' (a file name starting with '-' must exist, or write ./\(token))")
        }
        return out
    }

    static func unknownCommand(_ name: String, _ names: [String]) -> VSliceError {
        let near = names.map { ($0, editDistance($0, name)) }.min { $0.1 < $1.1 }
        var reason = "unknown command '\(name)'"
        if let (n, d) = near, d <= max(2, name.count / 3) { reason += "; did you mean '\(n)'?" }
        reason += " Commands: " + names.filter { $0 != "help" }.joined(separator: ", ") + " (vslice help COMMAND)"
        return VSliceError(.usage, "usage", reason: reason)
    }

    /// Levenshtein distance.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        if x.isEmpty || y.isEmpty { return max(x.count, y.count) }
        var prev = Array(0...y.count)
        for i in 1...x.count {
            var cur = [i] + Array(repeating: 0, count: y.count)
            for j in 1...y.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[y.count]
    }
}
