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

    @OptionGroup var cluster: ExecutorOptions

    func validate() throws {
        if cluster.detach { throw ValidationError("--detach is for transcode: batch runs its tasks one after another") }
        guard Container.format(forPath: "x." + container) != nil else {
            throw ValidationError("--container takes mp4, mov or mkv, got '\(container)'")
        }
    }

    func run() throws {
        let settings = try options.settings()
        // Bad encoder options fail every input the same way: BatchRunner refuses them once, before anything.
        let batch = try BatchRunner(dir: dir, outDir: outDir, pattern: pattern, recursive: recursive, container: container,
                                    settings: settings, force: outputOptions.force)
        runner.prepare()
        Signals.remoteRun.store(cluster.executor != .local, ordering: .relaxed)
        Signals.remoteStops.store(cluster.executor == .ray, ordering: .relaxed)
        let store = try runner.store.open()
        let writer = runner.json ? EventWriter() : nil
        let talk = !runner.quiet && !runner.json
        let summary = try batch.run(store: store, onEvent: { event in
            switch event {
            case let .skipped(item, reason, verified):
                writer?.emit("input_skipped", ["input": item.input, "output": item.output, "reason": reason])
                if verified && talk { FileHandle.standardError.write(Data("skip \(item.relative): \(item.output) verifies\n".utf8)) }
            case let .redone(item, reason):
                writer?.emit("input_redone", ["input": item.input, "output": item.output, "reason": reason])
                if talk { FileHandle.standardError.write(Data("redo \(item.relative): \(item.output) was \(reason)\n".utf8)) }
            case let .conflict(item, error):
                writer?.emit("task_failed", ["input": item.input, "output": item.output, "exit_code": Int(error.exitCode),
                                             "error": error.description])
            case let .failed(_, error):
                Terminal.printError(error.description)
            }
        }, transcode: { item, force in
            var request = outputOptions.request(input: item.input, output: item.output, settings: settings)
            request.force = force
            request.executor = cluster.config
            return runner.session.run(input: item.input, output: item.output) { onEvent throws(VSliceError) in
                try Transcoder(request: request, logger: runner.logger, onEvent: onEvent).run(store: store, options: runner.pipelineOptions)
            }.error
        })
        if let writer {
            writer.emit("batch_done", EventWriter.fields(summary).merging(["input": dir, "output": outDir]) { $1 })
        } else if !runner.quiet {
            var text = String(format: "batch: %d inputs: %d done, %d skipped, %d failed in %.1f s\n",
                              summary.inputs, summary.done, summary.skipped, summary.failed, summary.seconds)
            if !summary.notVideos.isEmpty { text += "  skipped, not videos: " + summary.notVideos.joined(separator: ", ") + "\n" }
            if !summary.failures.isEmpty { text += "  failed: " + summary.failures.keys.sorted().joined(separator: ", ") + "\n" }
            FileHandle.standardError.write(Data(text.utf8))
        }
        if Cancellation.stopRequested || summary.interrupted { throw VSliceError(.interrupted, "batch", path: dir, reason: "interrupted; run the same command again to go on") }
        if summary.failed > 0 {
            throw BatchFailure(message: "\(summary.failed) of \(summary.inputs) inputs failed: "
                               + summary.failures.keys.sorted().joined(separator: ", "))
        }
    }
}
