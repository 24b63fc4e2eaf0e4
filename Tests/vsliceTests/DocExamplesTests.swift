import Foundation
import Testing

/// Every command line the documentation and the help show runs, on the bundled fixtures, and exits 0.
///
/// The rule (README.md points here):
/// - **README.md and docs/*.md**: in a fenced block whose opening line is exactly "```sh", every line that starts
///   with `vslice ` is an example (a line ending in `\` goes on on the next). A block's examples run in order, in
///   one fresh scratch folder that holds `Fixtures/` (the bundled fixtures). Blocks marked otherwise (`text`) are
///   not run: they show commands that need more than the fixtures (a cluster, your own files).
/// - **`vslice help` and `vslice help COMMAND`**, for every command it lists: each line under `EXAMPLES:` that
///   starts with `vslice `, up to a run of two spaces (what follows is its description). Each runs alone, in a
///   fresh scratch folder that holds the files the examples name: `in.mp4` (Fixtures/h264_aac.mp4), `in.mov`
///   (Fixtures/mono44k.mov), and the folders `in/` and `~/Videos/` (each holding in.mp4); an example
///   `vslice verify OUT --against IN` first gets OUT from `vslice transcode IN -o OUT`.
/// - In both, `20da0bc1` stands for the ID of an unfinished task: one is made first (a transcode of
///   Fixtures/h264_aac.mp4 killed after its first finished segment) and its ID put in its place.
/// - Each line runs with bash (`-o pipefail`, so a `| jq …` after it must succeed too), with HOME and the job
///   store inside the scratch folder and the built vslice first on PATH.
@Suite("the examples in README, docs/ and vslice help run")
struct DocExamplesTests {
    /// A command line and where it was shown.
    struct Example: CustomStringConvertible {
        var line: String
        var source: String
        var description: String { "\(source): \(line)" }
    }

    // MARK: extraction

    /// The examples of one markdown file, block by block.
    static func markdownBlocks(_ path: String) throws -> [[Example]] {
        let name = String(path.dropFirst(Paths.packageRoot.path.count + 1))
        var blocks: [[Example]] = [], current: [Example]? = nil, pending = ""
        for (n, raw) in try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n").enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if current == nil {
                if raw == "```sh" { current = [] }
                continue
            }
            if line.hasPrefix("```") {
                if let block = current, !block.isEmpty { blocks.append(block) }
                current = nil
                continue
            }
            let joined = pending.isEmpty ? line : pending + " " + line
            if joined.hasSuffix("\\") { pending = String(joined.dropLast()).trimmingCharacters(in: .whitespaces); continue }
            pending = ""
            if joined.hasPrefix("vslice ") { current?.append(Example(line: joined, source: "\(name):\(n + 1)")) }
        }
        return blocks
    }

    static var markdownFiles: [String] {
        let docs = Paths.packageRoot.appendingPathComponent("docs").path
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: docs)) ?? []).filter { $0.hasSuffix(".md") }.sorted()
        return [Paths.packageRoot.appendingPathComponent("README.md").path] + names.map { docs + "/" + $0 }
    }

    /// The EXAMPLES of `vslice help` and of `vslice help COMMAND` for every command it lists.
    static func helpExamples() throws -> [Example] {
        func help(_ args: [String]) throws -> String {
            let r = try Proc.run(Paths.vslice, ["help"] + args, environment: ["COLUMNS": "1000"])
            #expect(r.status == 0, "vslice help \(args): \(r.stderr)")
            return r.stdout
        }
        func examples(_ text: String, _ source: String) -> [Example] {
            var inside = false, found: [Example] = []
            for raw in text.components(separatedBy: "\n") {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line == "EXAMPLES:" { inside = true; continue }
                guard inside else { continue }
                if line.isEmpty || !line.hasPrefix("vslice ") {
                    if !found.isEmpty { break }
                    continue
                }
                let command = line.range(of: "  ").map { String(line[..<$0.lowerBound]) } ?? line
                found.append(Example(line: command, source: source))
            }
            return found
        }
        let top = try help([])
        var all = examples(top, "vslice help")
        var commands: [String] = []
        var inCommands = false
        for line in top.components(separatedBy: "\n") {
            if line.hasPrefix("SUBCOMMANDS:") { inCommands = true; continue }
            guard inCommands else { continue }
            guard line.hasPrefix("  "), let word = line.split(separator: " ").first, !line.hasPrefix("  See") else { continue }
            commands.append(String(word))
        }
        #expect(commands.count >= 10, "the commands listed by vslice help: \(commands)")
        for command in commands { all += examples(try help([command]), "vslice help \(command)") }
        return all
    }

    // MARK: running

    /// A scratch folder: `work/` (where lines run) holding `Fixtures` and the help examples' files, `home/`.
    struct Scratch {
        let root: URL
        var work: String { root.appendingPathComponent("work").path }
        var home: String { root.appendingPathComponent("home").path }

        init() throws {
            root = try Paths.scratch("examples")
            let fm = FileManager.default
            for dir in ["work/in", "home/Videos", "home/.vslice", "bin"] {
                try fm.createDirectory(at: root.appendingPathComponent(dir), withIntermediateDirectories: true)
            }
            try fm.createSymbolicLink(atPath: root.appendingPathComponent("work/Fixtures").path, withDestinationPath: Paths.fixtures.path)
            try fm.createSymbolicLink(atPath: root.appendingPathComponent("bin/vslice").path, withDestinationPath: Paths.vslice)
            let mp4 = Paths.fixture("h264_aac.mp4")
            for copy in ["work/in.mp4", "work/in/in.mp4", "home/Videos/in.mp4"] {
                try fm.copyItem(atPath: mp4, toPath: root.appendingPathComponent(copy).path)
            }
            try fm.copyItem(atPath: Paths.fixture("mono44k.mov"), toPath: root.appendingPathComponent("work/in.mov").path)
        }

        var environment: [String: String] {
            ["HOME": home, "VSLICE_HOME": home + "/.vslice", "XDG_DATA_HOME": home + "/.local/share",
             "PATH": root.appendingPathComponent("bin").path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")]
        }

        func shell(_ line: String, environment extra: [String: String] = [:]) throws -> Run {
            let quoted = "'" + work.replacingOccurrences(of: "'", with: "'\\''") + "'"
            return try Proc.run("/bin/bash", ["-o", "pipefail", "-c", "cd \(quoted) && " + line], timeout: 300,
                                environment: environment.merging(extra) { $1 })
        }

        /// An unfinished task: a transcode killed after its first finished segment; its ID.
        func interruptedTask() throws -> String {
            let killed = try shell("vslice transcode Fixtures/h264_aac.mp4 -o interrupted.mp4 -q --min-split-seconds 0 "
                                   + "--segment-seconds 1 --jobs 1", environment: ["VSLICE_FAULT": "segment-done:1"])
            #expect(killed.status != 0, "the transcode was to be killed: \(killed.stderr)")
            let status = try shell("vslice status --json")
            let rows = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [[String: Any]] ?? []
            guard let id = rows.first(where: { ($0["output"] as? String)?.hasSuffix("/interrupted.mp4") == true })?["id"] as? String
            else { throw OracleError("no interrupted task: \(status.stdout) \(status.stderr)") }
            return String(id.prefix(8))
        }

        /// Runs one example (after what it needs), recording a failure with where it was shown.
        func run(_ example: Example) throws {
            var line = example.line
            if line.contains("20da0bc1") { line = line.replacingOccurrences(of: "20da0bc1", with: try interruptedTask()) }
            let words = line.split(separator: " ").map(String.init)
            if words.count >= 5, words[1] == "verify", words[3] == "--against",
               !FileManager.default.fileExists(atPath: work + "/" + words[2]) {
                let made = try shell("vslice transcode \(words[4]) -o \(words[2]) -q")
                #expect(made.status == 0, "making \(words[2]) for \(example): \(made.stderr)")
            }
            let r = try shell(line)
            #expect(r.status == 0, "\(example) exited \(r.status): \(r.stderr.suffix(600))")
        }
    }

    @Test("README.md and docs/*.md: every vslice line of an sh block, block by block")
    func markdown() throws {
        let blocks = try Self.markdownFiles.flatMap { try Self.markdownBlocks($0) }
        #expect(blocks.joined().count >= 10, "examples found: \(blocks)")
        #expect(blocks.joined().contains { $0.source.hasPrefix("docs/") }, "docs/ shows no runnable example")
        for block in blocks {
            let scratch = try Scratch()
            defer { try? FileManager.default.removeItem(at: scratch.root) }
            if block.contains(where: { $0.line.contains("20da0bc1") }) {
                let id = try scratch.interruptedTask()
                for example in block {
                    var e = example
                    e.line = e.line.replacingOccurrences(of: "20da0bc1", with: id)
                    try scratch.run(e)
                }
            } else {
                for example in block { try scratch.run(example) }
            }
        }
    }

    @Test("vslice help and vslice help COMMAND: every example, each on its own")
    func help() throws {
        let examples = try Self.helpExamples()
        #expect(examples.count >= 20, "examples found: \(examples)")
        for command in ["transcode", "batch", "plan", "verify", "probe", "status", "resume", "cancel", "gc"] {
            #expect(examples.contains { $0.source == "vslice help \(command)" }, "vslice help \(command) shows no example")
        }
        for example in examples {
            let scratch = try Scratch()
            defer { try? FileManager.default.removeItem(at: scratch.root) }
            try scratch.run(example)
        }
    }
}
