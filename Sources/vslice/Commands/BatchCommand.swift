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
            resumes; a failing input is reported (each line naming it) and the batch goes on — but a failure \
            that repeats for every input (the processor cannot start: a command or module missing) stops it \
            at once (exit 2). An interrupted batch is carried on by the same command or `vslice resume --all`. \
            Exit 0 when every input is done or skipped, 6 when some failed, 130 when interrupted.

            EXAMPLES:
              vslice batch ~/Videos -o ~/out --recursive --crf 23 --preset medium
              vslice batch . -o ../small --pattern '*.mov' --container mkv --vcodec libx265
              vslice batch in -o out --json | jq -c 'select(.event == "batch_done")'
              vslice batch in -o out --process cat --dry-run
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

    @Flag(help: "Plan every input and estimate the batch's wall time; transcode nothing (nor create OUTDIR).")
    var dryRun = false

    func validate() throws {
        if cluster.detach { throw ValidationError("--detach is for transcode: batch runs its tasks one after another") }
        guard Container.format(forPath: "x." + container) != nil else {
            throw ValidationError("--container takes mp4, mov or mkv, got '\(container)'")
        }
    }

    func run() throws {
        var request = BatchRequest(dir: dir, outDir: outDir, settings: try options.settings())
        request.pattern = pattern
        request.recursive = recursive
        request.container = container
        request.force = outputOptions.force
        request.keepTemp = outputOptions.keepTemp
        request.keepLogs = outputOptions.keepLogs
        request.workRoot = outputOptions.workDir
        request.maxAttempts = runner.maxAttempts
        request.stallTimeout = runner.stallTimeout
        request.executor = cluster.config
        // Bad encoder options fail every input the same way: BatchRunner refuses them once, before anything.
        let batch = try BatchRunner(request, createOutDir: !dryRun)
        if dryRun {
            let store = try runner.store.open()
            let all = batch.estimate(store: store, logger: runner.logger) { i, n, item in
                if !runner.json && !runner.quiet { FileHandle.standardError.write(Data("planning file \(i) of \(n): \(item.relative)\n".utf8)) }
            }
            return try EstimateText.print(all, json: runner.json)
        }
        runner.prepare()
        Signals.remoteRun.store(cluster.executor != .local, ordering: .relaxed)
        Signals.remoteStops.store(cluster.executor == .ray, ordering: .relaxed)
        let store = try runner.store.open()
        try BatchDriver(batch: batch, runner: runner).run(store: store)
    }
}
