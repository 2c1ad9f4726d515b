import Foundation
@testable import PBTPB2
import PBT
import Testing

/// What `PB2Explore` hands the bandit: hyperparameters mapped to [0, 1] and
/// back, and one observation per finished trial with a finished parent.
@Suite struct PB2ExploreTests {
    static let space = SearchSpace([.logUniform("lr", 1e-4, 1e-2, mutateWithin: 1e-6...1e-1), .uniform("momentum", 0.5, 0.9)])

    static func trial(_ id: Int, parent: Int?, lr: Double, loss: Double?, status: TrialStatus = .finished) -> TrialRecord {
        var t = TrialRecord(spec: TrialSpec(id: id, generation: parent == nil ? 0 : 1, parentID: parent,
                                            hyperparameters: Hyperparameters(["lr": .number(lr), "momentum": .number(0.7)]),
                                            startStep: parent == nil ? 0 : 10, steps: 10, seed: 0), createdAt: 0)
        t.status = status
        t.evaluation = loss
        return t
    }

    @Test func pointsUseTheEvolutionRangeOnALogScaleAndMapBack() {
        let point = PB2Explore.point(Hyperparameters(["lr": .number(1e-3), "momentum": .number(0.7)]), Self.space)
        // log(1e-3 / 1e-6) / log(1e-1 / 1e-6) = 3/5; (0.7 − 0.5) / 0.4 = 0.5.
        #expect(abs(point[0] - 0.6) < 1e-12 && abs(point[1] - 0.5) < 1e-12)
        #expect(abs(PB2Explore.value(0.6, of: Self.space.parameters[0]) - 1e-3) < 1e-15)
        #expect(PB2Explore.value(1, of: Self.space.parameters[0]) == 1e-1 && PB2Explore.value(0, of: Self.space.parameters[1]) == 0.5)
        #expect(PB2Explore.point(Hyperparameters(["lr": .number(5), "momentum": .number(0.1)]), Self.space) == [1, 0], "clamped")
    }

    @Test func oneObservationPerFinishedTrialWithAFinishedParent() {
        let population = [
            Self.trial(1, parent: nil, lr: 1e-3, loss: 5.0),
            Self.trial(2, parent: nil, lr: 1e-4, loss: 5.5),
            Self.trial(3, parent: 1, lr: 1e-3, loss: 4.0),
            Self.trial(4, parent: 2, lr: 1e-2, loss: nil, status: .failed),
            Self.trial(5, parent: 9, lr: 1e-2, loss: 4.5),  // parent outside the window
            Self.trial(6, parent: 1, lr: 1e-2, loss: nil, status: .running),
        ]
        let observations = PB2Explore.observations(population.reversed(), Self.space)
        #expect(observations.count == 1)
        let o = observations[0]
        #expect(o.time == 20 && o.context == [5.0] && abs(o.rewardChange - 0.05) < 1e-15, "halved: (5 − 4) / 10 / 2")
        #expect(abs(o.point[0] - 0.6) < 1e-12 && abs(o.point[1] - 0.5) < 1e-12)

        // Losses at the ends of a Double's range: their difference overflowed, the bandit threw, and PB2 fell back to
        // perturbation for the whole run (found by a helper). Halved, the change is finite.
        let extreme = [Self.trial(1, parent: nil, lr: 1e-3, loss: 1.7e308), Self.trial(3, parent: 1, lr: 1e-3, loss: -1.7e308)]
        let changes = PB2Explore.observations(extreme, Self.space).map(\.rewardChange)
        #expect(changes.count == 1 && changes.allSatisfy(\.isFinite), "\(changes)")
    }
}
