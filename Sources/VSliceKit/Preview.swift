import Foundation
import Logging
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// What `vslice plan` shows: the plan a transcode of the same request makes — the same checks before any work,
/// the same inspection of the source, the same planning path (`Plan.forRun`) — and how the audio is encoded.
public struct PlanPreview: Sendable {
    public var plan: Plan
    public var audio: [AudioTrackPlan]
    /// The `--vf` graph's measured timing.
    public var filterTiming: FilterTiming?
    /// What the check before any work timed of the `--process` program (whether or not the plan counts it).
    public var processorCost: ProcessorCost? = nil
    /// How long the run should take on the wall for `--jobs` (nil when the costs could not be measured).
    public var estimate: WallEstimate? = nil
}

extension Transcoder {
    /// How many of the source's first frames the `--process` program is run on before any work.
    public static var processorCheckFrames: Int { ProcessorCheck.frames }

    /// The plan this request's transcode would make, with nothing written: no task, no work folder. The output
    /// need not be given (its container then is MP4's).
    public func preview(stallTimeout: Double = RunOptions().stallTimeout) throws(VSliceError) -> PlanPreview {
        let started = monotonicSeconds()
        var hashed = self
        hashed.request.settings = try request.settings.withProcessorFiles()
        var (preview, source) = try hashed.previewHashed(stallTimeout: stallTimeout)
        // A run makes the same checks first: they count as long as these took (before any measurement made for
        // the estimate alone).
        let checks = monotonicSeconds() - started
        preview.estimate = hashed.estimate(preview, source: source, checksSeconds: checks)
        return preview
    }

    /// The wall-time estimate for the preview's plan: from the costs the plan measured, or (a plan that does not
    /// measure them: `--jobs 1`, a fixed segment length) measured now, with the processor's as its check timed it.
    private func estimate(_ preview: PlanPreview, source: Inspection, checksSeconds: Double) -> WallEstimate? {
        let settings = request.settings, plan = preview.plan
        var cost = plan.elementCost
        if cost == nil, plan.frameCount >= 2 {
            cost = ElementCost.given() ?? (try? ElementCost.measure(source: source.input, index: source.video, settings: settings,
                                                                     expect: source.identity, workerProcess: request.executor.isRemote))
        }
        guard var cost else { return nil }
        if cost.processor == nil, let process = settings.process, var p = ProcessorCost.given() ?? preview.processorCost {
            p.persistent = process.isPersistent
            cost.processor = p
        }
        return WallEstimate(plan: plan, cost: cost, jobs: settings.jobs,
                            cores: request.executor.isRemote ? nil : ProcessInfo.processInfo.activeProcessorCount, checksSeconds: checksSeconds)
    }

    private func previewHashed(stallTimeout: Double) throws(VSliceError) -> (PlanPreview, Inspection) {
        try request.settings.validate()
        try request.executor.check(request: request, detach: false)
        let format = Container.format(forPath: request.output) ?? "mp4"
        try EncoderCheck.check(request.settings, format: format, output: nil)
        let input = Paths.absolute(request.input)
        let source = try inspect(input: input, format: format, stallTimeout: stallTimeout)
        let plan = try Plan.forRun(source: source, settings: request.settings, workers: request.executor.processPerElement)
        let audio = try AudioTrackPlan.describe(source: input, probe: source.probe, settings: request.settings)
        return (PlanPreview(plan: plan, audio: audio, filterTiming: source.extras.filterTiming, processorCost: source.extras.processorCost), source)
    }
}
