import ArgumentParser
import Foundation
import VSliceKit

struct BatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Transcode every matching file of a folder into OUTDIR, mirroring its layout.",
        discussion: """
            One task per input, run one after the other, each with --jobs segments at once (so --jobs bounds the \
            encoders of the whole batch). Files that are not videos (text, pictures, audio only — found by \
            probing files not named like videos) are skipped quietly and listed in the summary. An input whose \
            output exists and verifies against it is skipped, so a batch can be re-run — unless the job store \
            says that output was made with other settings: then it is made again, saying so. An unfinished task \
            resumes; a failing input is reported and the batch goes on. Exit 0 when every input is done or \
            skipped, 6 when some failed, 130 when interrupted.

            EXAMPLES:
              vslice batch ~/Videos -o ~/out --recursive --crf 23 --preset medium
              vslice batch . -o ../small --pattern '*.mov' --container mkv --vcodec libx265
              vslice batch in -o out --json | jq -c 'select(.event == "batch_done")'
            """)

    @Argument(help: "The folder of inputs.")
    var dir: String

    @Option(name: [.short, .customLong("output-dir")], help: "Where the outputs go (created if missing).")
    var outDir: String

    @Option(help: "Glob the file name must match (a pattern with '/' matches the path relative to DIR).")
    var pattern = "*"

    @Flag(help: "Also take files in subfolders.")
    var recursive = false

    @Option(help: "Output container: mp4, mov or mkv.")
    var container = "mp4"

    @OptionGroup var options: TranscodeOptions

    @OptionGroup var outputOptions: OutputOptions

    @OptionGroup var runner: RunOptions

    func validate() throws {
        guard Container.format(forPath: "x." + container) != nil else {
            throw ValidationError("--container takes mp4, mov or mkv, got '\(container)'")
        }
    }

    struct Summary: Encodable {
        var inputs = 0, done = 0, skipped = 0, failed = 0, redone = 0
        var seconds = 0.0
        /// Failed inputs (relative path) → error.
        var failures: [String: String] = [:]
        /// Skipped inputs (relative path) → why.
        var skippedInputs: [String: String] = [:]
    }

    func run() throws {
        let settings = try options.settings()
        // Bad encoder options fail every input the same way: refuse them once, before anything.
        try EncoderCheck.check(settings, format: Container.format(forPath: "x." + container))
        runner.prepare()
        do {
            try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        } catch {
            throw VSliceError(.usage, "batch", path: outDir, reason: "cannot create the output folder: \(error.localizedDescription)")
        }
        let items = try BatchPlanner.items(dir: dir, outDir: outDir, pattern: pattern, recursive: recursive, extension: container)
        let store = try runner.store.open()
        let writer = runner.json ? EventWriter() : nil
        let t0 = Date()
        var summary = Summary(inputs: items.count)
        var outputs: [String: String] = [:]
        for item in items {
            if Cancellation.stopRequested { break }
            func fail(_ error: VSliceError) {
                summary.failed += 1
                summary.failures[item.relative] = error.description
                Terminal.printError(error.description)
            }
            if let other = outputs[item.output] {
                let e = VSliceError(.usage, "batch", path: item.input, reason: "its output \(item.output) is also \(other)'s; rename one")
                writer?.emit("task_failed", ["input": item.input, "output": item.output, "exit_code": Int(e.exitCode), "error": e.description])
                fail(e)
                continue
            }
            outputs[item.output] = item.input
            if let why = MediaSniff.whyNotVideo(item.input) {
                summary.skipped += 1
                summary.skippedInputs[item.relative] = why
                writer?.emit("input_skipped", ["input": item.input, "output": item.output, "reason": why])
                continue
            }
            var force = outputOptions.force
            if FileManager.default.fileExists(atPath: item.output) && !force {
                if let previous = Self.madeWithOtherSettings(item.output, settings: settings, store: store) {
                    // Verifying would pass (same frames, other quality): the ledger knows better. Made again.
                    let reason = "made with other settings (\(previous))"
                    summary.redone += 1
                    writer?.emit("input_redone", ["input": item.input, "output": item.output, "reason": reason])
                    if !runner.quiet && !runner.json { FileHandle.standardError.write(Data("redo \(item.relative): \(item.output) was \(reason)\n".utf8)) }
                    force = true
                } else if let check = try? Verifier.verify(output: item.output, against: item.input, filter: settings.videoFilter), check.ok {
                    summary.skipped += 1
                    summary.skippedInputs[item.relative] = "output exists and verifies"
                    writer?.emit("input_skipped", ["input": item.input, "output": item.output, "reason": "output exists and verifies"])
                    if !runner.quiet && !runner.json { FileHandle.standardError.write(Data("skip \(item.relative): \(item.output) verifies\n".utf8)) }
                    continue
                }
            }
            do {
                try FileManager.default.createDirectory(atPath: (item.output as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
            } catch {
                fail(VSliceError(.usage, "batch", path: item.output, reason: "cannot create its folder"))
                continue
            }
            var request = outputOptions.request(input: item.input, output: item.output, settings: settings)
            request.force = force
            let outcome = runner.session.run(input: item.input, output: item.output) { onEvent throws(VSliceError) in
                try Transcoder(request: request, logger: runner.logger, onEvent: onEvent).run(store: store, options: runner.pipelineOptions)
            }
            if let error = outcome.error {
                if error.kind == .interrupted { throw error }
                fail(error)
            } else {
                summary.done += 1
            }
        }
        summary.seconds = Date().timeIntervalSince(t0)
        if let writer {
            writer.emit("batch_done", EventWriter.fields(summary))
        } else if !runner.quiet {
            var text = String(format: "batch: %d inputs: %d done, %d skipped, %d failed in %.1f s\n",
                              summary.inputs, summary.done, summary.skipped, summary.failed, summary.seconds)
            let notVideo = summary.skippedInputs.filter { $0.value != "output exists and verifies" }.keys.sorted()
            if !notVideo.isEmpty { text += "  skipped, not videos: " + notVideo.joined(separator: ", ") + "\n" }
            if !summary.failures.isEmpty { text += "  failed: " + summary.failures.keys.sorted().joined(separator: ", ") + "\n" }
            FileHandle.standardError.write(Data(text.utf8))
        }
        if Cancellation.stopRequested { throw VSliceError(.interrupted, "batch", path: dir, reason: "interrupted; run the same command again to go on") }
        if summary.failed > 0 {
            throw BatchFailure(message: "\(summary.failed) of \(summary.inputs) inputs failed: "
                               + summary.failures.keys.sorted().joined(separator: ", "))
        }
    }

    /// When the job store's newest finished task for `output` was made with settings other than these: how
    /// they differ ("crf=30 → crf=20"); nil when they are the same or the store does not know the output.
    static func madeWithOtherSettings(_ output: String, settings: TranscodeSettings, store: JobStore) -> String? {
        let path = URL(fileURLWithPath: output).standardizedFileURL.path
        guard let tasks = try? store.tasks(),
              let last = tasks.filter({ $0.output == path && $0.status == "done" }).max(by: { $0.updatedAt < $1.updatedAt })
        else { return nil }
        let now = settings.outputSignature
        guard last.settingsSignature != now else { return nil }
        let before = last.settingsSignature.split(separator: ";").map(String.init)
        let after = now.split(separator: ";").map(String.init)
        let key = { (s: String) in s.split(separator: "=", maxSplits: 1).first.map(String.init) ?? s }
        var changes: [String] = []
        for a in after where !before.contains(a) {
            let old = before.first { key($0) == key(a) }
            changes.append((old.map { $0 + " → " } ?? "") + a)
        }
        for b in before where !after.contains(where: { key($0) == key(b) }) { changes.append(b + " → -") }
        return changes.joined(separator: ", ")
    }
}
