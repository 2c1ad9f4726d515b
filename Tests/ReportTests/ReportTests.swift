import Foundation
import PBTSchedules
import ReportFixtures
@testable import PBTReport
import Testing

@Suite("report files")
struct ReportTests {
    /// Writes `results` into a fresh temporary directory, runs `body`, removes it.
    static func withReport(_ results: ExperimentResults, _ body: (URL) throws -> Void) throws {
        let directory = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try ExperimentReport.write(results, to: directory)
        try body(directory)
    }

    static func read(_ directory: URL, _ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }

    @Test("writes every file, atomically (no temporary files left), and re-reads results.json")
    func files() throws {
        let results = ExperimentResults.demo(seeds: 2)
        try Self.withReport(results) { directory in
            let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            let expected = (ExperimentReport.fileNames + ReportFigures.ids.map { "\($0).svg" }).sorted()
            #expect(names == expected, "no .tmp files, nothing missing")
            let reread = try ExperimentResults.read(from: directory.appendingPathComponent("results.json"))
            #expect(reread.runs.count == results.runs.count)
            #expect(reread.runs.map(\.trials.count) == results.runs.map(\.trials.count))
            // Rewriting over an existing report replaces the files.
            try ExperimentReport.write(reread, to: directory)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == expected)
        }
    }

    @Test("a results.json edited into an impossible state is refused, naming what: a negative NLL, a replay of a run that is gone")
    func impossibleResultsAreRefused() throws {
        let demo = ExperimentResults.demo(seeds: 3)
        #expect(demo.inconsistency == nil)
        var negative = demo
        negative.runs[0].trials[0].validationNLL = -5
        #expect(negative.inconsistency?.contains("validation NLL -5.0 is negative") == true, "\(negative.inconsistency ?? "accepted")")
        let replayed = try #require(demo.replays.first)
        var orphan = demo
        orphan.runs.removeAll { $0.method == replayed.method && $0.seed == replayed.seed }
        #expect(orphan.inconsistency == "it replays \(replayed.method) seed \(replayed.seed), a run it does not hold")
        // And reading such a file says so.
        let file = Fixture.temporaryDirectory().appendingPathExtension("json")
        defer { try? FileManager.default.removeItem(at: file) }
        try ExperimentResults.jsonEncoder().encode(orphan).write(to: file)
        let error = #expect(throws: ReportError.self) { try ExperimentResults.read(from: file) }
        #expect(error?.description.contains("a run it does not hold") == true, "\(error?.description ?? "")")
    }

    /// Found by a user editing results.json by hand: workers 0 crashed the
    /// report (a precondition in the curves), and the rest drew nonsense
    /// ("every run trained 3,000 steps (budget 0)", a method with 3 seeds
    /// out of 2). Each edit is refused, naming what is wrong.
    @Test(arguments: [
        ("workers 0", "PBT-5x5 seed 1: workers is 0; it must be at least 1"),
        ("population -1", "population is -1; it must be at least 1"),
        ("budget 0", "totalStepsPerMethod is 0; it must be at least 1"),
        ("steps per trial 0", "stepsPerTrial is 0; it must be at least 1"),
        ("fp64", "precision 'fp64' is neither fp32 nor bf16"),
        ("a run twice", "it holds PBT-5x5 seed 1 twice"),
        ("a trial id twice", "PBT-5x5 seed 1: a trial id appears twice"),
        ("an unknown parent", "its parent 99999 is not a trial of the run"),
        ("an unknown loser", "its tournament loser 99999 is not a trial of the run"),
        // Found by a helper: a trial its own parent was drawn.
        ("its own parent", "its parent is itself; a parent is always an earlier trial"),
        ("negative steps", "steps is -50; it is never negative"),
        ("lr 0", "its learning rate 0.0 is not a positive number"),
        ("every trial failed", "PBT-5x5 seed 1: its whole-set score is of trial"),
        // Found by a helper: a NaN whole-set score ranked its method first ("Lowest mean final NLL: PBT-5x5, nan").
        ("whole-set nan", "PBT-5x5 seed 1: its whole-set NLL nan is not a finite number"),
    ])
    func handEditedResultsAreRefused(edit: String, message: String) throws {
        var results = ExperimentResults.demo(seeds: 2)
        results.runs.sort { ($0.method == MethodName.pbt5x5 ? 0 : 1, $0.seed) < ($1.method == MethodName.pbt5x5 ? 0 : 1, $1.seed) }
        try #require(results.runs[0].method == MethodName.pbt5x5 && results.runs[0].seed == 1 && results.inconsistency == nil)
        let child = try #require(results.runs[0].trials.firstIndex { $0.parent != nil })
        switch edit {
        case "workers 0": results.runs[0].workers = 0
        case "population -1": results.runs[0].population = -1
        case "budget 0": results.totalStepsPerMethod = 0
        case "steps per trial 0": results.stepsPerTrial = 0
        case "fp64": results.precision = "fp64"
        case "a run twice": results.runs.append(results.runs[0])
        case "a trial id twice": results.runs[0].trials[1].id = results.runs[0].trials[0].id
        case "an unknown parent": results.runs[0].trials[child].parent = 99999
        case "an unknown loser": results.runs[0].trials[child].tournamentLoser = 99999
        case "its own parent": results.runs[0].trials[child].parent = results.runs[0].trials[child].id
        case "negative steps": results.runs[0].trials[0].steps = -50
        case "whole-set nan": results.runs[0].wholeSet?.nll = .nan
        case "every trial failed":
            for index in results.runs[0].trials.indices { results.runs[0].trials[index].validationNLL = nil }
        default: results.runs[0].trials[0].hyperparameters["lr"] = 0
        }
        #expect(results.inconsistency?.contains(message) == true, "\(results.inconsistency ?? "accepted")")
    }

    @Test("a key written twice in results.json is refused, not half read")
    func aDuplicateKeyIsRefused() throws {
        let file = Fixture.temporaryDirectory().appendingPathExtension("json")
        defer { try? FileManager.default.removeItem(at: file) }
        var text = String(decoding: try ExperimentResults.jsonEncoder().encode(ExperimentResults.demo(seeds: 2)), as: UTF8.self)
        text = text.replacingOccurrences(of: "\"preset\" :", with: "\"preset\" : \"paper\", \"preset\" :")
        try Data(text.utf8).write(to: file)
        let error = #expect(throws: ReportError.self) { try ExperimentResults.read(from: file) }
        #expect(error?.description.contains("key 'preset' appears twice in the top-level object") == true, "\(error?.description ?? "")")
    }

    @Test("a report folder that is a file is refused by name, and the file is kept")
    func aReportFolderThatIsAFileIsRefused() throws {
        let file = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("mine".utf8).write(to: file)
        let error = #expect(throws: ReportError.self) { try ExperimentReport.write(.demo(seeds: 2), to: file) }
        #expect(error?.description == "\(file.path) is a file, not a folder: give a folder for the report (it is created if missing).")
        #expect(try String(contentsOf: file, encoding: .utf8) == "mine")
    }

    @Test("with no PBT run there is no learned schedule: no schedule.csv is written, and one already there is left alone")
    func noPBTRunWritesNoSchedule() throws {
        var results = ExperimentResults.demo(seeds: 2)
        results.runs = results.runs.filter { !$0.isPBT }
        results.replays = []
        #expect(!results.runs.isEmpty)
        let directory = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let earlier = directory.appendingPathComponent("schedule.csv")
        try Data("step,lr\n0,0.003\n".utf8).write(to: earlier)
        let written = try ExperimentReport.write(results, to: directory)
        #expect(!written.map(\.lastPathComponent).contains("schedule.csv"))
        #expect(try String(contentsOf: earlier, encoding: .utf8) == "step,lr\n0,0.003\n")
        // Found by a user: the report described all four methods, said no PBT
        // run had a result, and listed a schedule.csv it did not write.
        let md = try String(contentsOf: directory.appendingPathComponent("report.md"), encoding: .utf8)
        #expect(!md.contains("PBT-5x20 (5 workers") && md.contains("random search trains 5 models"), "only the methods run are described")
        #expect(md.contains("No PBT method was run in this experiment") && !md.contains("No PBT run produced"))
        #expect(!md.contains("- `schedule.csv`"), "no schedule.csv listed")
        var fixedOnly = results
        fixedOnly.runs = results.runs.filter { $0.method == MethodName.fixedLR }
        #expect(ReportContent(fixedOnly).methodNotes[1] == "Methods: the fixed-LR baseline trains 5 models with one hand-set rate. Fixed LR is evaluated every \(results.stepsPerTrial.grouped) steps, like PBT's trials.")
    }

    /// A replay that diverged (its score NaN) is said to have, not shown
    /// as "nan" and "+nan" (found by a helper).
    @Test func aDivergedReplayIsSaidSo() throws {
        var results = ExperimentResults.demo(seeds: 2)
        try #require(!results.replays.isEmpty)
        results.replays[0].replayNLL = .nan
        results.replays[0].replayWholeSet?.nll = .nan
        let row = ReportContent(results).replayRows[0]
        #expect(row[3] == "diverged" && row[6] == "—" && !row.contains { $0.contains("nan") }, "\(row)")
        results.replays[0].replayWholeSet = nil
        #expect(ReportContent(results).replayRows[0][5...6] == ["—", "—"])
        #expect(ReportContent(ExperimentResults.demo(seeds: 2)).replayRows[0][6].hasPrefix("+") || ReportContent(ExperimentResults.demo(seeds: 2)).replayRows[0][6].hasPrefix("-"))
    }

    @Test("results.json carries the claims and their tests; a results.json from before whole-set scores still renders")
    func claimsInResultsAndOlderFiles() throws {
        let results = ExperimentResults.demo(seeds: 5)
        try Self.withReport(results) { directory in
            let data = try Data(contentsOf: directory.appendingPathComponent("results.json"))
            let reread = try ExperimentResults.jsonDecoder().decode(ExperimentResults.self, from: data)
            let claims = try #require(reread.claims)
            #expect(claims.map(\.label) == ["(a)", "(b)", "(c)", "(d)"])
            #expect(claims.map(\.verdict) == Claims.evaluate(results).map(\.verdict))
            #expect(claims[0].comparisons.allSatisfy { $0.test != nil }, "five seeds: every test ran")
            #expect(claims[0].evidence.last?.contains("whole set") == true)

            // An older file: no claims, no whole-set scores, one replay.
            var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            json["claims"] = nil
            json["runs"] = (json["runs"] as? [[String: Any]])?.map { run in run.filter { $0.key != "wholeSet" } }
            json["replays"] = (json["replays"] as? [[String: Any]])?.prefix(1).map { replay in
                replay.filter { $0.key != "pbtWinnerWholeSet" && $0.key != "replayWholeSet" }
            }
            let older = try ExperimentResults.jsonDecoder().decode(ExperimentResults.self, from: try JSONSerialization.data(withJSONObject: json))
            #expect(older.runs.allSatisfy { $0.wholeSet == nil } && older.replays.count == 1 && older.claims == nil)
            try Self.withReport(older) { again in
                let markdown = try Self.read(again, "report.md")
                #expect(markdown.contains("100 % of budget (8,000 steps, fixed windows)"))
                #expect(markdown.contains("a paired test needs at least 2 seeds with a result in each group (got 1 and 1)"))
            }
        }
    }

    /// Found by a user: one seed's value stood beside "± 0.000", which reads as a measured spread.
    @Test("one seed: its values stand alone, with no ± beside them; two seeds have their spread")
    func oneSeedHasNoSpread() throws {
        try Self.withReport(.demo(seeds: 1)) { directory in
            let markdown = try Self.read(directory, "report.md")
            #expect(!markdown.contains("± 0.000"))
            #expect(markdown.range(of: #"[0-9] ± [0-9]"#, options: .regularExpression) == nil, "no spread for one seed anywhere")
            #expect(markdown.contains(", 1 seed") && markdown.contains("1 seed, no spread"))
        }
        try Self.withReport(.demo(seeds: 2)) { directory in
            let markdown = try Self.read(directory, "report.md")
            #expect(markdown.range(of: #"[0-9] ± [0-9]"#, options: .regularExpression) != nil)
        }
    }

    @Test("report.html is well-formed XML, self-contained, and has every figure with one <svg>")
    func html() throws {
        try Self.withReport(.demo(seeds: 2)) { directory in
            let html = try Self.read(directory, "report.html")
            let parsed = parseXML(html)
            #expect(parsed.error == nil, "\(parsed.error ?? "")")
            let figureIDs = zip(parsed.elements, parsed.attributes).filter { $0.0 == "figure" }.compactMap { $0.1["id"] }
            #expect(figureIDs == ReportFigures.ids)
            for id in ReportFigures.ids {
                // Between this figure's opening tag and its closing tag: one svg and a caption.
                let start = try #require(html.range(of: "<figure id=\"\(id)\">"))
                let end = try #require(html.range(of: "</figure>", range: start.upperBound ..< html.endIndex))
                let figure = String(html[start.upperBound ..< end.lowerBound])
                #expect(figure.components(separatedBy: "<svg ").count == 2, "\(id): one <svg>")
                #expect(figure.contains("<figcaption>"), "\(id): a caption")
            }
            #expect(!html.contains("<script"))
            #expect(!html.contains("src=") && !html.contains("<link") && !html.contains("url(http"), "no external resources")
            #expect(html.contains("The paper’s claims") && html.contains("Final results per method") && html.contains("How this was made"))
        }
    }

    @Test("every fig-*.svg file is well-formed; report.md links each one and has the tables")
    func svgFilesAndMarkdown() throws {
        try Self.withReport(.demo(seeds: 2)) { directory in
            for id in ReportFigures.ids {
                let svg = try Self.read(directory, "\(id).svg")
                #expect(svg.hasPrefix("<?xml"))
                let parsed = parseXML(svg)
                #expect(parsed.error == nil, "\(id).svg: \(parsed.error ?? "")")
                #expect(parsed.elements.first == "svg")
                #expect(parsed.elements.count > 20, "\(id).svg draws something")
            }
            let markdown = try Self.read(directory, "report.md")
            for id in ReportFigures.ids {
                #expect(markdown.contains("](\(id).svg)"), "report.md links \(id).svg")
            }
            #expect(markdown.contains("| Claim | Verdict | Comparison (first vs second) | Test | Statistic | p (claimed; against) |"))
            #expect(markdown.contains("### How each verdict was reached"))
            #expect(markdown.contains("| Method | W×P | Seeds |"))
            for label in ["(a)", "(b)", "(c)", "(d)"] {
                #expect(markdown.contains("**\(label)**"))
            }
        }
    }

    @Test("CSV files hold every curve point, every trial and the winner's schedule")
    func csv() throws {
        let results = ExperimentResults.demo(seeds: 2)
        try Self.withReport(results) { directory in
            let curves = try Self.read(directory, "curves.csv").split(separator: "\n")
            #expect(curves.first == "method,seed,clock,x,best_nll")
            let points = results.runs.reduce(0) { total, run in
                total + Clock.allCases.reduce(0) { $0 + run.bestCurve($1).points.count }
            }
            #expect(curves.count == points + 1)
            #expect(curves.contains { $0.hasPrefix("PBT-5x20,1,model_iteration,") })

            let trials = try Self.read(directory, "trials.csv").split(separator: "\n")
            #expect(trials.first?.hasPrefix("method,seed,id,parent,generation,lr,start_step,steps,end_step,validation_nll,failed") == true)
            #expect(trials.count == results.runs.reduce(0) { $0 + $1.trials.count } + 1)

            let winner = try #require(Winner(results))
            let schedule = try Self.read(directory, "schedule.csv").split(separator: "\n").map(String.init)
            #expect(schedule.first == "step,lr")
            let learned = try #require(winner.schedule)
            #expect(schedule.count == learned.points.count + 1)
            let parsed = schedule.dropFirst().map { line -> LearningRateSchedule.Point in
                let fields = line.split(separator: ",")
                return LearningRateSchedule.Point(step: Int(fields[0])!, rate: Double(fields[1])!)
            }
            #expect(parsed == learned.points, "schedule.csv holds the exact rates")
        }
    }

    @Test("CSV quoting and number format")
    func csvFields() {
        #expect(ReportCSV.field("plain") == "plain")
        #expect(ReportCSV.field("a,b") == "\"a,b\"")
        #expect(ReportCSV.field("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(ReportCSV.number(400) == "400")
        #expect(ReportCSV.number(0.003) == "0.003")
        #expect(ReportCSV.number(.nan) == "nan")
    }

    @Test("method names with <&>\" are escaped everywhere; the report stays well-formed")
    func hostileNames() throws {
        let name = "PBT <&> \"odd\", 'name'"
        let results = Fixture.results([
            Fixture.run(name, seed: 1, nlls: [5, 4]),
            Fixture.run(MethodName.randomSearch, seed: 1, nlls: [5, 4.5], lr: 0.003),
        ])
        try Self.withReport(results) { directory in
            let parsed = parseXML(try Self.read(directory, "report.html"))
            #expect(parsed.error == nil, "\(parsed.error ?? "")")
            #expect(parsed.text.contains(name))
            for id in ReportFigures.ids {
                #expect(parseXML(try Self.read(directory, "\(id).svg")).error == nil, "\(id)")
            }
            let trials = try Self.read(directory, "trials.csv")
            #expect(trials.contains("\"PBT <&> \"\"odd\"\", 'name'\",1,0,"))
        }
    }

    @Test("results without runs still give a complete report that says there is no data")
    func empty() throws {
        let results = Fixture.results([])
        try Self.withReport(results) { directory in
            let html = try Self.read(directory, "report.html")
            let parsed = parseXML(html)
            #expect(parsed.error == nil, "\(parsed.error ?? "")")
            #expect(zip(parsed.elements, parsed.attributes).filter { $0.0 == "figure" }.compactMap { $0.1["id"] } == ReportFigures.ids)
            #expect(html.contains("no data") && html.contains("no learned schedule"))
            #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("schedule.csv").path), "no learned schedule, no schedule.csv")
        }
    }

    @Test("a disagreement is stated plainly in the report")
    func disagreementStated() throws {
        let results = ClaimsTests.results([(MethodName.pbt5x5, ClaimsTests.seeds(1)), (MethodName.randomSearch, ClaimsTests.seeds(0))])
        try Self.withReport(results) { directory in
            let html = try Self.read(directory, "report.html")
            #expect(html.contains("Where we disagree with the paper:</b> (a) PBT-5x5 is the most compute-efficient"))
            #expect(try Self.read(directory, "report.md").contains("**Where we disagree with the paper:** (a)"))
        }
    }

    @Test("unwritable directory: a typed error that says what to do")
    func unwritable() {
        // A path below a regular file can never be created.
        let file = Fixture.temporaryDirectory()
        _ = FileManager.default.createFile(atPath: file.path, contents: Data("x".utf8))
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(throws: ReportError.self) {
            try ExperimentReport.write(Fixture.results([]), to: file.appendingPathComponent("run"))
        }
        #expect(throws: ReportError.self) {
            try ExperimentResults.read(from: file)
        }
    }

    @Test("the y axis of a clock figure focuses on the late part when early values would squeeze it")
    func focus() throws {
        let series = [PlotSeries(name: "a", color: "#000000", interpolation: .stepAfter,
                                 points: [PlotPoint(x: 0, y: 7.5), PlotPoint(x: 10, y: 4.0), PlotPoint(x: 100, y: 3.6)])]
        let range = try #require(ReportFigures.focusRange(series))
        #expect(range == 3.6 ... 4.0, "value at 15 % of x is 4.0")
        let flat = [PlotSeries(name: "a", color: "#000000", points: [PlotPoint(x: 0, y: 4), PlotPoint(x: 100, y: 3.6)])]
        #expect(ReportFigures.focusRange(flat) == nil, "nothing above the value at 15 %: no cut")
    }

    @Test("the demo is deterministic and exercises failures, losers and a replay")
    func demo() {
        let a = ExperimentResults.demo(seeds: 2)
        let b = ExperimentResults.demo(seeds: 2)
        #expect(a.runs.map { $0.trials.map(\.validationNLL?.description) } == b.runs.map { $0.trials.map(\.validationNLL?.description) })
        #expect(a.runs.count == 8 && a.replays.count == 2, "one replay per seed of the winning method")
        #expect(a.runs.allSatisfy { $0.wholeSet != nil } && a.replays.allSatisfy { $0.pbtWinnerWholeSet != nil })
        #expect(ComputeCheck(a).isEqual && ComputeCheck(a).maximumDifference == 0)
        #expect(a.runs.contains { $0.trials.contains { $0.finiteNLL == nil } })
        #expect(a.runs.contains { $0.trials.contains { $0.tournamentLoser != nil } })
    }
}

/// The report lists schedule.json and the replays only where they are:
/// `report render --output` elsewhere listed files it had not written
/// (found by a helper).
@Suite struct ReportFileListTests {
    @Test func theFilesListedAreTheFilesThere() throws {
        let directory = Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try ExperimentReport.write(.demo(seeds: 2), to: directory)
        let bare = try String(contentsOf: directory.appendingPathComponent("report.md"), encoding: .utf8)
        #expect(bare.contains("- `schedule.csv`") && !bare.contains("- `schedule.json`") && !bare.contains("- `replay.json, replays/`"), "\(bare)")
        for name in ["schedule.json", "replay.json"] { try Data("{}".utf8).write(to: directory.appendingPathComponent(name)) }
        try ExperimentReport.write(.demo(seeds: 2), to: directory)
        let full = try String(contentsOf: directory.appendingPathComponent("report.md"), encoding: .utf8)
        #expect(full.contains("- `schedule.json`") && full.contains("- `replay.json, replays/`"), "\(full)")
    }
}

/// Durations as the report shows them: a smoke run's 0.16 s was "0 s"
/// (found by a helper).
@Suite struct ReportDurationTests {
    @Test func shortTimesKeepTheirDigits() {
        #expect(duration(0.16) == "0.16 s" && duration(5.3) == "5.3 s" && duration(0) == "0 s")
        #expect(duration(75) == "75 s" && duration(4000) == "1 h 7 min" && duration(-1) == "—")
    }
}
