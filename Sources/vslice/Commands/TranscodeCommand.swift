import ArgumentParser
import Foundation
import Logging
import Synchronization
import VSliceKit

struct TranscodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transcode",
        abstract: "Transcode INPUT to OUTPUT: audio once, video in parallel segments, merged and verified.",
        discussion: """
            The container follows OUTPUT's extension: .mp4 (or .m4v), .mov, .mkv. Options are checked before any \
            work (the encoder is opened once with them): a bad one is exit 2. Running the same command again \
            resumes an unfinished task.

            Any program can be the per-segment algorithm: --process 'python3 examples/denoise.py' --overlap 2,2 \
            runs OpenCV's temporal denoiser on every segment, two buffer frames each side (examples/ has it and a \
            cartoonizer; see --process below).

            EXAMPLES:
              vslice transcode in.mov -o out.mp4
              vslice transcode in.mp4 -o out.mkv --vcodec libx265 --crf 26 --preset medium
              vslice transcode in.mp4 -o out.mp4 --vbitrate 2M --abitrate 96k --jobs 4
              vslice transcode in.mp4 -o out.mp4 --vf scale=1280:-2 --codec-opt tune=film
              vslice transcode in.mp4 -o out.mp4 --json | jq -c 'select(.event == "progress")'
              vslice transcode in.mp4 -o out.mkv --process cat --process-format rgb24
            """)

    @Argument(help: "The input media file.")
    var input: String

    @Option(name: [.short, .customLong("output")], help: "The output file.")
    var output: String

    @OptionGroup var options: TranscodeOptions

    @OptionGroup var outputOptions: OutputOptions

    @OptionGroup var runner: RunOptions

    @OptionGroup var cluster: ExecutorOptions

    func run() throws {
        let settings = try options.settings()
        runner.prepare()
        var request = runner.recording(outputOptions.request(input: input, output: output, settings: settings))
        request.executor = cluster.config
        Signals.remoteRun.store(cluster.executor != .local, ordering: .relaxed)
        Signals.remoteStops.store(cluster.executor == .ray, ordering: .relaxed)
        var pipelineOptions = runner.pipelineOptions
        pipelineOptions.detach = cluster.detach
        let store = try runner.store.open()
        let outcome = runner.session.run(input: input, output: output) { onEvent throws(VSliceError) in
            try Transcoder(request: request, logger: runner.logger, onEvent: onEvent).run(store: store, options: pipelineOptions)
        }
        if let error = outcome.error { throw error }
    }
}
